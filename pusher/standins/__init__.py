"""Local APNs and FCM servers that speak the real wire protocols, for tests, demo and load tests.

- ``tls``: throwaway CA + ``localhost`` certificate (clients get ``ca.pem``).
- ``credentials``: an APNs .p8 key (key id, team id) and a Google service-account JSON.
- ``apns`` / ``fcm``: the two services (``ApnsStandin``, ``FcmStandin``), each with
  ``faults`` (:class:`faults.FaultPlan`) and ``received`` (:class:`recorder.Recorder`).
- ``runner.StandinThread``: serve one on its own loop in a background thread.
- ``app``: the JSON control API (``/_standin/...``) on the same TLS port.
- ``python -m pusher.standins apns|fcm --state-dir DIR``: one in the foreground.

In a test::

    tls = make_tls(tmp_path)
    apns = ApnsStandin(); apns.trust(key := make_apns_key())
    with StandinThread(apns, tls) as thread:
        provider = ApnsProvider(key=key.pem, key_id=key.key_id, team_id=key.team_id,
                                topic=..., endpoint=thread.url, ca_file=tls.ca_file)
        apns.faults.fail_next(503, "ServiceUnavailable")
        ...
        apns.received.all()
"""

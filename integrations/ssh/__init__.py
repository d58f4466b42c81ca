"""SSH (and any PAM service) logins approved with pushgate: a PAM module and a ForceCommand.

Everything in this package runs on the protected server with the system's Python and the
standard library only (libpam-python embeds that Python), so it imports nothing else, and
its modules import each other relatively: installed, the package is called ``pushgate_ssh``.
"""

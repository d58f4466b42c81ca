"""What ``pushgate demo`` prints works: every URL answers, the sample API call succeeds."""

from __future__ import annotations

import re
import shlex

import aiohttp

from tests.e2e.conftest import Demo


async def test_every_printed_url_answers_and_the_sample_call_works(demo: Demo) -> None:
    """Each URL in the banner answers 200, and the printed curl line, run as printed, does."""
    urls = [url for line in demo.output for url in re.findall(r"http://\S+", line)]
    assert len(urls) >= 4, demo.output
    (sample,) = [line for line in demo.output if "curl " in line]
    argv = shlex.split(sample.split(":", 1)[1])
    header = argv[argv.index("-H") + 1]
    name, _, value = header.partition(": ")
    async with aiohttp.ClientSession() as session:
        for url in urls:
            headers = {name: value} if url == argv[-1] else {}
            async with session.get(url.rstrip(".,)"), headers=headers) as reply:
                assert reply.status == 200, (url, reply.status)

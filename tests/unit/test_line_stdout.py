"""A container host's handlers print whole lines, even when many containers print at once."""

from __future__ import annotations

import io
import json
import re
import threading

from sandbox.line_stdout import LineAtomicWriter


def test_lines_printed_by_many_threads_come_out_whole():
    target = io.StringIO()
    writer = LineAtomicWriter(target)

    def container(i: int) -> None:
        for j in range(500):
            print(json.dumps({"_aws": {"metric": "Requests"}, "container": i, "n": j}), file=writer)

    threads = [threading.Thread(target=container, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = target.getvalue().splitlines()
    assert len(lines) == 8 * 500
    assert all(re.fullmatch(r'\{"_aws": \{"metric": "Requests"\}, "container": \d, "n": \d+\}', line) for line in lines)


def test_text_without_a_newline_waits_for_it_or_for_flush():
    target = io.StringIO()
    writer = LineAtomicWriter(target)
    writer.write("part")
    assert target.getvalue() == ""
    writer.write("ial\nrest")
    assert target.getvalue() == "partial\n"
    writer.flush()
    assert target.getvalue() == "partial\nrest"

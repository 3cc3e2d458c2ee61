"""Places many simulated calls on a running FastAGI server and prints one JSON line per call.

Run as a separate process by the end-to-end tests, so the server and the callers do not share
a reactor, as with a real Asterisk.
"""

from __future__ import annotations

import json
import sys

from twisted.internet import reactor

from ivr.asterisk_sim import SimulatedCall, accelerated, parse_keys, place_calls


def main() -> None:
    host, port, spec_file, speed = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    with open(spec_file, encoding="utf-8") as f:
        specs = [json.loads(line) for line in f]
    calls = [
        accelerated(
            SimulatedCall(
                called=s["called"],
                caller=s["caller"],
                script=tuple(parse_keys(s["keys"])),
                uniqueid=s.get("uniqueid"),
            ),
            speed,
        )
        for s in specs
    ]

    def done(records: list) -> None:
        for r in records:
            print(
                json.dumps(
                    {
                        "uniqueid": r.uniqueid,
                        "status": r.variables.get("TELEGESTION_STATUS"),
                        "agistatus": r.agistatus,
                        "connected": r.connected,
                        "prompts": r.prompts,
                        "error": r.error,
                    }
                )
            )
        reactor.stop()

    def failed(failure: object) -> None:
        print(json.dumps({"fatal": str(failure)}))
        reactor.stop()

    reactor.callWhenRunning(
        lambda: place_calls(reactor, host, port, calls, concurrency=len(calls)).addCallbacks(
            done, failed
        )
    )
    reactor.run()


if __name__ == "__main__":
    main()

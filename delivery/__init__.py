"""Email delivery: compose each customer's campaign email and send it exactly once.

- `links`: signed, opaque tokens and the landing / unsubscribe URLs built from them
- `compose`: the MIME message (HTML + text, inline poster, List-Unsubscribe headers)
- `policy`: the CRLF email policy every module writes and reads messages with
- `outbox`: the SQLite outbox keyed by (campaign, customer): the exactly-once guarantee
- `transport`: the `Transport` interface and `SmtpTransport`
- `dispatch`: claims due messages, re-checks suppression, sends, records the outcome
- `sink`: a local SMTP server writing a Maildir, for the demo and the tests
- `errors`: the package's exceptions and the address scrubber for error texts
"""

"""Header names on ``rb.deliver`` messages (the payload is the canonical ReturnOrder protobuf)."""

from __future__ import annotations

# JSON list of [step, mapping id, document type, source step, posts_amount]: the plan fixed at accept time.
H_STEPS = "Rb-Steps"
H_IDEMPOTENCY = "Rb-Idempotency-Key"
H_RULE = "Rb-Rule"
H_LANE = "Rb-Lane"
# ErpSystem enum number of the target.
H_ERP = "Rb-Erp"
# Epoch seconds of the original acceptance (sync-latency metric, registration after a gateway crash).
H_ACCEPTED_AT = "Rb-Accepted-At"
# Dead letter id a replayed message comes from.
H_REPLAY_OF = "Rb-Replay-Of"
# Who submitted the event, for the audit scribe (delivery/submitted_audit.py) that writes its entry.
H_ACTOR = "Rb-Actor"
H_AUTH_METHOD = "Rb-Auth-Method"
H_REQUEST_ID = "Rb-Request-Id"

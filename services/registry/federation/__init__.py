"""Federation between clusters: sharing agreements, the partner feed, webhooks, and the receiving side.

- agreements.py: what an owner cluster shares with a partner cluster (events in the log).
- feed.py: a consumer of the log materialising, per partner, the CloudEvents it may read; GET /v1/feed.
- webhooks.py: partners' webhooks, deliveries queued with each item, the delivery worker and its log.
- signing.py: the `Clusterhub-Signature` scheme (HMAC-SHA256 over timestamp and body).
- inbox.py: the receiving side: peers, the signed inbox, joint events, forwarded registrations.
- worker.py: the background tasks (feed builder, webhook deliveries) started in the registry's lifespan.
"""
from __future__ import annotations

from fastapi import APIRouter

from services.registry.federation import agreements, feed, inbox, webhooks

router = APIRouter()
for module in (agreements, feed, webhooks, inbox):
    router.include_router(module.router)

PROJECTORS = [agreements.AGREEMENT_PROJECTOR, inbox.INBOX_PROJECTOR]

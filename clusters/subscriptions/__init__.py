"""Event subscriptions: every cluster event POSTed as signed JSON to the URLs other systems
registered, so they can react (issue 18; docs/webhooks.md tells receivers how to verify).

Modules: `services` (create, change, rotate the secret, which subscriptions want an event, the
dispatch), `payload` (the JSON), `signing` (the HMAC headers), `sending` (one attempt through
clusters.alerts.webhook_post's checked connection), `tasks` (Celery, with retries). Only the
worker talks to receivers; views read the database and enqueue.
"""

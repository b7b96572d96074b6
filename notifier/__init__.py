"""Notifications of finished jobs: Slack incoming webhooks and e-mail, chosen per job or per tenant."""

"""WhatsApp and SMS through Twilio: signed webhooks in, Messages API out, media download."""

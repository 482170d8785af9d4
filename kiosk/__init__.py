"""The touch check-in kiosk: a small local Flask app serving the touch UI to Chromium in kiosk mode, publishing
`checkin` (and `help`) events through the shared edge outbox. See docs/kiosk.md."""

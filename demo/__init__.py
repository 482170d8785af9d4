"""`footfall demo`: a whole center on one machine. Sits above the apps: it imports server, kiosk and counter."""

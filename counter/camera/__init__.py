"""Camera door counter: overhead camera, background subtraction, tracking and line crossing."""

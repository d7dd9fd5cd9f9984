"""Alert rules over metrics and spans, incidents, and webhook notifications."""

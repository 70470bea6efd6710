"""WebRTC: viewers, WHEP, the shared Opus encoder, the performer's camera."""

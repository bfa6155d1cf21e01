"""Reception: boss / secretary, interception, phone queues and voicemail (guide 9.1.4, 9.1.7, 9.1.8, 9.2.2; issue 19)."""

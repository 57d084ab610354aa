"""Self-bootstrapped cross-identity pairs (DreamActor-M2): a pose model animates other
characters with real motions; the results that pass quality filters become driving
videos whose targets are the real clips."""

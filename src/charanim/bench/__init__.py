"""``charanim bench``: quality, speed and memory of models and baselines on the same cases."""

"""`cointoss report`: the fleet's `redis_selected` lines summarised against the weight."""

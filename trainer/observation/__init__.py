"""What a player sees of a board: the network's input planes and the masks of moves that do not lose at once.

Between the engine (the rules) and everything that decides moves (agents,
learning): both read positions through this package, so a network trained on
these planes and a player that serves it see the same thing.
"""

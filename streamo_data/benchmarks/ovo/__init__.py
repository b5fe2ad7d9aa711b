"""OVO-Bench (github.com/JoeLeelyf/OVO-Bench): its annotations, both inference protocols, its scorer."""

"""Who may be contacted, what may be said, and what data may leave the house."""

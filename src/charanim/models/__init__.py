"""Model families (backbones), the embedded tiny model's config, and weight loading."""

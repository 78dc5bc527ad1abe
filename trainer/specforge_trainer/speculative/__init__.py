"""Real speculative decoding with a trained EAGLE3 draft: the measure of a draft that training metrics only simulate."""

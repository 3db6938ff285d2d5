"""Dataset layer: COCO records, validation, conversion, statistics and splits."""

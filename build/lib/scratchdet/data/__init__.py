"""Dataset layer: COCO records, validation, conversion, statistics, splits and the sample.

Modules (the ``scratchdet data ...`` commands are thin wrappers over them):

* ``records``  -- ``load_coco_records(json, image_dir) -> Dataset`` of typed records.
* ``validate`` -- ``validate_coco(json, image_dir) -> ValidationReport`` (errors + warnings).
* ``convert``  -- ``convert_exports(exports, image_dirs) -> ConvertResult`` (exports -> COCO).
* ``stats``    -- ``compute_stats({split: Dataset}) -> DatasetStats``; ``write_stats(...)``.
* ``split``    -- ``split_coco(coco, ratios, seed)``, ``merge_coco``, ``write_splits``.
* ``fetch``    -- ``fetch_sample(dest)``: download and verify the public sample.
"""

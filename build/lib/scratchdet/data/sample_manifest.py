"""What ``scratchdet data fetch-sample`` downloads: the ``dataset/`` folder of
github.com/karpovaknn/defect_detection laid out as the scratch sample, and the SHA256 of every
photo as published with it (``SHA256SUMS``); a downloaded photo must match.
"""

from __future__ import annotations

REPO = "karpovaknn/defect_detection"
#: Folder of the repository that holds the sample.
REMOTE_ROOT = "dataset"

#: Annotation files: path under ``dataset/`` -> path in the local sample.
JSON_FILES: dict[str, str] = {
    "train/coco.json": "annotations/train.json",
    "val/coco.json": "annotations/val.json",
    "test/coco.json": "annotations/test.json",
    "json/white/export-2022-02-07-910a3feb-a633-4249-9d91-31f3266256b9.json": (
        "labeling-exports/white/export-2022-02-07-910a3feb-a633-4249-9d91-31f3266256b9.json"
    ),
    "json/white/export-2022-02-07-acdaa4a5-4fb0-4b27-bdc3-833b0f2058a2.json": (
        "labeling-exports/white/export-2022-02-07-acdaa4a5-4fb0-4b27-bdc3-833b0f2058a2.json"
    ),
    "json/white/export-2022-02-11-32fd572a-94f3-465c-9980-799bef822ced.json": (
        "labeling-exports/white/export-2022-02-11-32fd572a-94f3-465c-9980-799bef822ced.json"
    ),
    "json/red/export-2022-02-15-db4cc34c-20e8-444d-8d09-c73baa447107.json": (
        "labeling-exports/red/export-2022-02-15-db4cc34c-20e8-444d-8d09-c73baa447107.json"
    ),
    "json/red/export-2022-02-16-3c77710f-75ef-47eb-b694-eb75b485890d.json": (
        "labeling-exports/red/export-2022-02-16-3c77710f-75ef-47eb-b694-eb75b485890d.json"
    ),
    "json/red/export-2022-02-16-f58f2c94-07e6-40db-a2e8-0f86ef5fa432.json": (
        "labeling-exports/red/export-2022-02-16-f58f2c94-07e6-40db-a2e8-0f86ef5fa432.json"
    ),
    "different_tests/white_coco.json": "reference/white_coco.json",
    "different_tests/red_coco.json": "reference/red_coco.json",
    "different_tests/white_1600_4900_coco.json": "reference/white_1600_4900_coco.json",
    "different_tests/red_1600_4900_coco.json": "reference/red_1600_4900_coco.json",
}

#: Photos: ``<split>/<file name>`` (same path remotely under ``dataset/`` and locally) -> SHA256.
PHOTO_SHA256: dict[str, str] = {
    "train/red_DSC_0618.JPG": "8b1793083740aa72d2a52b9368c749d9777893c24073fecd161c448763ecf96d",
    "train/red_DSC_0619.JPG": "c64b370200d0e5c48db8d6a1d35290b9f966e4d40a6f358df1c6e7064b666aab",
    "train/white_DSC_0514.JPG": "1ff0e126438fe844c1187f3482d9bb6bf2fc023137b7dac2c78733cb444f61e0",
    "train/white_DSC_0515.JPG": "1ffe0ec29f6651e28a0d904ca3d333bc9ab59cca039cc6cb822b43d0bb96a176",
    "train/white_train_clean_img344.JPG": (
        "5d5a144d16f4795039badc6d3da5b12cb14ce9e87df06529c3a8cd6182d5e763"
    ),
    "train/white_train_clean_img345.JPG": (
        "2aaba799f91660dea9a00f2acb24d405db1f176203aefb913682ad8f66782b61"
    ),
    "train/white_train_scratch_4_img78.JPG": (
        "2b0daedda5e6945bf4f6677342802f0bee8e0fa5ca818f418b4feac8d0c0ca66"
    ),
    "train/white_train_scratch_4_img80.JPG": (
        "d478be348ac881fcee0a56f877f82ac754112f06d349c1885eadcdd635618f4f"
    ),
    "val/red_DSC_0879.JPG": "76bfee0dab19ef8329816a7bd60be3d8b92c81a4882d17e1a306e978d9636a82",
    "val/red_DSC_0880.JPG": "d7b127b807dd87a3a9e68262ddbb20f9ec98e310c3aad91d512cade04a35b731",
    "val/red_DSC_0881.JPG": "1457b2bf40a5ff09168a09bc7ca2edb6547fe654a60a86f2ffd05aac3b0e1547",
    "val/red_DSC_0882.JPG": "c1b8e8c0c0c6e933ec1342e2da2c818f43cf030293ee04ef6a8a993a8fd78b0d",
    "val/red_DSC_1135.JPG": "62159abcf08f0a5388e96ccc27f161294207a7f2e60672bffc79ddc8d1be8f98",
    "val/red_DSC_1136.JPG": "878430d8bc609d573f3d2ebdb6e6446abf106584cd6a348968de371eacec8ca5",
    "val/red_DSC_1137.JPG": "1d00daeca30fbfe6c9b6a03aeed13105554e54415120a40ee51dd8486571ce94",
    "val/red_DSC_1161.JPG": "675e86f37ca3b7bec7ad4de3fedb03eb57b61d04c926b0b3fbaf7112cfe39df7",
    "val/white_DSC_0439.JPG": "562ab0c8defefccf3da16d334d926746c72ca394f380cda022bc27aa98fd3dd2",
    "val/white_DSC_0440.JPG": "cefcd97c95ebc8b2f8f2562e268ac89db21913fab2c44734f97a7bb414faa280",
    "val/white_DSC_0449.JPG": "a69c7594752aa823a041b70c35213f315b1680b813a59dadf1d66bd69c459dd4",
    "val/white_train_clean_img298.JPG": (
        "f5cfab6d4b47d74187242f823b9e6b8d87a334f25f39e7ebf3098c642b63a1e6"
    ),
    "val/white_train_clean_img299.JPG": (
        "03657cdbe09743577c52c1c08eb83675b7627063a05d13cc8790aed8fd1fd9cb"
    ),
    "val/white_train_scratch_3_img112.JPG": (
        "e05b8a7079606fb4b20d69da7904f65ee72789d704f1d93926ce97ed017b48f2"
    ),
    "val/white_train_scratch_3_img113.JPG": (
        "72b8a080e1946a7514d7166cba4f546974e1ed205e5b1850309520b1a1a77c1e"
    ),
    "val/white_train_scratch_3_img116.JPG": (
        "82742c256aa5998fda9a763c092ecbd194c5046e212bb6b95d1ed88d466c7933"
    ),
    "test/red_DSC_0905.JPG": "14df4a1a6fa1b280412bb4daf0fa5c0f77f08b0340657360e183ec01384e7a38",
    "test/red_DSC_0906.JPG": "7800ce1a4a5d6ffa29d948f1bcee20751411c73f7fbbf1b5376d1c369a80b6f3",
    "test/red_DSC_0907.JPG": "3db84ba5e731c14c5c0c8a5eca4b97e7d8baf6366c761a2603e493f2fd586ed4",
    "test/red_DSC_0908.JPG": "00c5d9a5fa96a907761b694269e0c672d5b98b26ed1ca12f0d00d63d6611f61b",
    "test/red_DSC_0909.JPG": "00b851f1d63eb44835cc86f8bc650459ba68d2902f4baa564f08ef6bc3629f1f",
    "test/red_DSC_0910.JPG": "2c2dcbe3ce397fee406efddab31716a5fc368ceb5a6549868dff8a3cfa70075f",
    "test/red_DSC_0911.JPG": "6053ee01a385023fb826358c6435b9cd1b65c5ea10d9111129b44f3b7aa093ae",
    "test/red_DSC_0912.JPG": "3e5db401881a1501aac8dab155ab52ddec0ae48a057a76eaf1091e36beebfe6d",
    "test/red_DSC_1196.JPG": "096abaa72ae4a44d5b71c84827edb16610d8b7d88083dc57dd84aa5243dc134e",
    "test/red_DSC_1197.JPG": "8f5262acc85a4b92fd7fd77e6dd10cd4733dd76428be2cd4cdc97a0883aff639",
    "test/red_DSC_1198.JPG": "90f7b7f53e6bbbd660ca172ee7638cd1a314cff2d0960f9da0074adaebb88f3b",
    "test/white_test_clean_img192.JPG": (
        "6220b17d600cdd8ea61cf6920c7d3d526e56baef8d9f2d821e3ce426bb8ae114"
    ),
    "test/white_test_clean_img193.JPG": (
        "3a866208f0887a1f63953b8473cd1cbe028d01304d0fb92cc0deebe321540224"
    ),
    "test/white_test_clean_img194.JPG": (
        "c377efe7f2a49c63d35a607cbf21b2ceec65d0cb2d742243042e0512dd5ab6e2"
    ),
    "test/white_test_scratch_1_img253.JPG": (
        "71e73c6f26db67d1f223ab4040cbc8285a4140dbd4747ff72f63bdfcf1592753"
    ),
    "test/white_test_scratch_1_img254.JPG": (
        "d6f3482d7dbae848616ffab4a527f1d7a1ddd3ef93cc85ba1085c39dc0086966"
    ),
    "test/white_test_scratch_2_img294.JPG": (
        "fec4aa6f7c4e07d9cf6f6e91632da555c405955421a60d72ac8250ca7a8d4135"
    ),
    "test/white_test_scratch_3_img269.JPG": (
        "903ff630f68a2960b36ae41691df2f4189432a20bf24af57ad5c94d3d8e0fb49"
    ),
    "test/white_test_scratch_4_img258.JPG": (
        "393b3e424669e031ce96b2642fcf091642b130d81df77c25312a050078821694"
    ),
    "test/white_test_scratch_4_img259.JPG": (
        "efd494b2c7b8d06308c004044eb29df36ab504fd33ef9abc4d554c59da4054a2"
    ),
    "test/white_test_scratch_4_img260.JPG": (
        "542ecd18e6e7282074abf5fdaa9c5546244f3636fc3013623dd889ad99c37256"
    ),
}


def sha256sums_text() -> str:
    """The checksum list in ``sha256sum`` format (what ``SHA256SUMS`` holds)."""
    return "".join(f"{digest}  {path}\n" for path, digest in PHOTO_SHA256.items())

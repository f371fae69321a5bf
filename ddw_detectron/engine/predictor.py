"""``DDWPredictor``: Detectron2's ``DefaultPredictor`` with the weights loaded the safe way."""

from detectron2.data import MetadataCatalog
from detectron2.data import transforms as T
from detectron2.engine import DefaultPredictor
from detectron2.modeling import build_model

from ..checkpoint import DDWCheckpointer, consumer_facts

__all__ = ["DDWPredictor"]


class DDWPredictor(DefaultPredictor):
    """Detectron2's ``DefaultPredictor`` (same attributes, same ``__call__``: a BGR ``HxWx3``
    image in, the model's outputs for it back) whose ``MODEL.WEIGHTS`` are read by
    :class:`DDWCheckpointer`: no code in a ``.pkl`` runs, a checkpoint made for another input
    convention, wiring or architecture is refused, and backbone tensors left unloaded are an
    error. An empty ``MODEL.WEIGHTS`` gives an untrained model, with the builders' warning."""

    def __init__(self, cfg):  # DefaultPredictor.__init__ loads with DetectionCheckpointer
        self.cfg = cfg.clone()
        self.model = build_model(self.cfg)
        self.model.eval()
        if len(cfg.DATASETS.TEST):
            self.metadata = MetadataCatalog.get(cfg.DATASETS.TEST[0])
        if cfg.MODEL.WEIGHTS:
            DDWCheckpointer(self.model, facts=consumer_facts(cfg)).load(cfg.MODEL.WEIGHTS)
        self.aug = T.ResizeShortestEdge(
            [cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MIN_SIZE_TEST], cfg.INPUT.MAX_SIZE_TEST
        )
        self.input_format = cfg.INPUT.FORMAT
        if self.input_format not in ("RGB", "BGR"):
            raise ValueError(f"INPUT.FORMAT = {self.input_format!r} is invalid: use RGB or BGR")

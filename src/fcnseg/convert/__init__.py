"""Converters from other formats: Caffe models without Caffe."""

from .caffe import BACKBONE_NETS, REFERENCE_NETS, convert_caffe, convert_caffe_backbone, read_caffemodel

__all__ = ["BACKBONE_NETS", "REFERENCE_NETS", "convert_caffe", "convert_caffe_backbone", "read_caffemodel"]

"""Data of ddw_detectron: the dataset check, unreadable images excluded and counted, and a
user's own COCO-format datasets named on the command line. The library registers no dataset;
the lab's generated ones are registered by importing ``ddw_lab``."""

"""The conventions of files on disk, each read and written in one place: lat-long environment maps, HDR images,
meshes, and config.yml files written by older versions."""

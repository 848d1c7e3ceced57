"""Wire protocol: spec, generated C header / pxd, Python codecs, compiled frame validator."""

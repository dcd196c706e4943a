"""Generated from proto/triskel/v1 by scripts/gen_proto.py. DO NOT EDIT."""

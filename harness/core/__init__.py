"""The shared floor: errors, files and records, provenance, seeds, caches, statistics, progress, shards, GPU devices, throughput, cells, hub assets and job timings."""

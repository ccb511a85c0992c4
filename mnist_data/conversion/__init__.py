"""Converters from IDX splits to PNG trees and TFRecord shards, and their verification."""

"""One exception type per domain; each message is one line naming the file and what is wrong."""


class MnistDataError(Exception):
    """Base of every error this package raises on purpose."""


class IdxError(MnistDataError, ValueError):
    """An IDX file (or bytes) is malformed: bad magic, wrong length, corrupt gzip."""


class DatasetError(MnistDataError, ValueError):
    """A dataset cannot be resolved or its files do not agree with each other."""


class FetchError(MnistDataError):
    """A download failed on every mirror or did not match its checksum."""


class ConvertError(MnistDataError):
    """A conversion cannot start or finish: output from another run, unwritable OUT, ..."""

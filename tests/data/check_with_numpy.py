#!/usr/bin/env python3
"""Checks what pare writes with numpy and zipfile: check_with_numpy.py WRITER."""
import io
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np


def main():
    writer = sys.argv[1]
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([writer, d], check=True)
        for name in ('stored.npz', 'deflated.npz'):
            p = os.path.join(d, name)
            with zipfile.ZipFile(p) as z:
                assert z.testzip() is None, name  # every CRC
                for info in z.infolist():
                    assert info.date_time == (1980, 1, 1, 0, 0, 0), info
                    want = zipfile.ZIP_DEFLATED if name == 'deflated.npz' else zipfile.ZIP_STORED
                    assert info.compress_type == want, info
            f = np.load(p)
            assert f.files == ['a', 'grow', 'empty', 'name\u00e9'], f.files
            assert np.array_equal(f['a'], np.arange(12, dtype='<f4').reshape(3, 4) * 0.5)
            g = f['grow']
            assert g.dtype == np.int32 and g.shape == (100000, 3), (g.dtype, g.shape)
            assert np.array_equal(g.ravel(), np.arange(300000, dtype=np.int32))
            assert f['empty'].shape == (0,) and f['empty'].dtype == np.bool_
            assert f['name\u00e9'] == 513 and f['name\u00e9'].dtype == np.uint16
        m = np.load(os.path.join(d, 'many.npz'))
        assert len(m.files) == 70000
        assert m['m69999'] == 69999 and m['m0'] == 0
        out = subprocess.run([writer, '-'], check=True, stdout=subprocess.PIPE).stdout
        a = np.load(io.BytesIO(out))
        assert np.array_equal(a, (np.arange(10) - 3).astype('<i2').reshape(2, 5))
        buf = io.BytesIO()
        np.save(buf, a)
        assert buf.getvalue() == out, 'npy bytes differ from np.save'
    print('ok')


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
#===- gen_expected.py - Inputs and expected outputs of the PTX examples ----===#
#
# Part of the qc project. MIT licence.
#
# Writes the .npy inputs and expected outputs of mma_m16n8k16.ptx and
# ldmatrix.ptx (standard library only; the files are committed, tests never
# run this). The fragment layouts are transcribed from the PTX ISA:
#  - section 9.7.14.5.8, "Matrix Fragments for mma.m16n8k16 with floating
#    point type": groupID = lane >> 2, tig = lane % 4;
#      A (16x16 f16, regs a0..a7 two per .b32): row = groupID for a0,a1,a4,a5
#        else groupID + 8; col = tig*2 + (i & 1), + 8 for i >= 4;
#      B (16x8 f16, b0..b3): row = tig*2 + (i & 1), + 8 for i >= 2;
#        col = groupID;
#      C/D (16x8 f32, c0..c3): row = groupID for c0,c1 else groupID + 8;
#        col = tig*2 + (i & 1).
#  - section 9.7.14.5.15, "ldmatrix": for .m8n8 .b16, threads 0-7 (8-15,
#    16-23, 24-31) hold the row addresses of matrix 0 (1, 2, 3); lane l
#    receives in register i the elements (row l >> 2, cols 2*(l % 4) and
#    2*(l % 4) + 1) of matrix i, the lower column in the low half; .trans
#    delivers the transposed matrix: elements (rows 2*(l % 4), 2*(l % 4)+1;
#    col l >> 2).
# Values are small integers (and quarters), so every product and sum is
# exact in f16/f32 and the expected D is exact whatever the summation order.
#
#===------------------------------------------------------------------------===#
import os
import struct
import sys


def save(path, descr, shape, flat):
    fmt = {'<f4': 'f', '<f2': 'e', '<u4': 'I'}[descr]
    data = b''.join(struct.pack('<' + fmt, v) for v in flat)
    shape_txt = '(' + ', '.join(str(d) for d in shape) + (',)' if len(shape) == 1 else ')')
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape_txt)
    total = (10 + len(header) + 1 + 63) // 64 * 64
    header += ' ' * (total - 10 - len(header) - 1) + '\n'
    with open(path, 'wb') as f:
        f.write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(header)))
        f.write(header.encode('ascii'))
        f.write(data)


def half_bits(x):
    return struct.unpack('<H', struct.pack('<e', x))[0]


def pack2(lo, hi):
    return half_bits(lo) | (half_bits(hi) << 16)


def main(out):
    A = [[float((i + 2 * k) % 5 - 2) for k in range(16)] for i in range(16)]
    B = [[float((k + 3 * j) % 7 - 3) for j in range(8)] for k in range(16)]
    C = [[0.25 * (i * 8 + j) for j in range(8)] for i in range(16)]
    D = [[sum(A[i][k] * B[k][j] for k in range(16)) + C[i][j] for j in range(8)]
         for i in range(16)]
    a, b, c, d = [], [], [], []
    for lane in range(32):
        g, t = lane >> 2, lane % 4
        ael = []
        for i in range(8):
            row = g if (i < 2 or 4 <= i < 6) else g + 8
            col = t * 2 + (i & 1) + (8 if i >= 4 else 0)
            ael.append(A[row][col])
        a += [pack2(ael[2 * r], ael[2 * r + 1]) for r in range(4)]
        bel = []
        for i in range(4):
            row = t * 2 + (i & 1) + (8 if i >= 2 else 0)
            bel.append(B[row][g])
        b += [pack2(bel[0], bel[1]), pack2(bel[2], bel[3])]
        for i in range(4):
            row = g if i < 2 else g + 8
            col = t * 2 + (i & 1)
            c.append(C[row][col])
            d.append(D[row][col])
    assert d[0] == -2.0  # D[0][0], computed by hand in README.md
    save(os.path.join(out, 'mma_a.npy'), '<u4', (32, 4), a)
    save(os.path.join(out, 'mma_b.npy'), '<u4', (32, 2), b)
    save(os.path.join(out, 'mma_c.npy'), '<f4', (32, 4), c)
    save(os.path.join(out, 'mma_d_expected.npy'), '<f4', (32, 4), d)

    T = [[float(r * 16 + col) for col in range(16)] for r in range(16)]
    save(os.path.join(out, 'ldmatrix_tile.npy'), '<f2', (16, 16),
         [v for row in T for v in row])
    # x4: matrix i = quadrant (rows 8*(i % 2).., cols 8*(i // 2)..).
    x4, x2t = [], []
    for lane in range(32):
        g, t = lane >> 2, lane % 4
        for m in range(4):
            r0, c0 = 8 * (m % 2), 8 * (m // 2)
            x4.append(pack2(T[r0 + g][c0 + 2 * t], T[r0 + g][c0 + 2 * t + 1]))
        for m in range(2):  # matrices: rows 8m..8m+7, cols 0..7, transposed
            r0 = 8 * m
            x2t.append(pack2(T[r0 + 2 * t][g], T[r0 + 2 * t + 1][g]))
    assert x4[5 * 4] == pack2(18.0, 19.0)  # lane 5, register 0 (README.md)
    save(os.path.join(out, 'ldmatrix_x4_expected.npy'), '<u4', (32, 4), x4)
    save(os.path.join(out, 'ldmatrix_x2_trans_expected.npy'), '<u4', (32, 2), x2t)


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))

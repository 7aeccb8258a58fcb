// @generated from archs.txt by tests/it/random_archs.rs (UPDATE_RANDOM_ARCHS=1); do not edit.

// a00: depth 1, N 108, batch 8
arch!(a00, A00, A00Workspace, A00Curvature, 8, {
    l0: Dense<8, 12, Identity>,
    loss: SoftmaxCrossEntropy<12>,
});

// a01: depth 128, N 34448, batch 4
arch!(a01, A01, A01Workspace, A01Curvature, 4, {
    l0: Dense<1, 16, Sigmoid>,
    l1: [Residual<16, Gelu>; 126],
    l2: DenseNoBias<16, 9, Identity>,
    loss: Mse<9>,
});

// a02: depth 17, N 430, batch 6
arch!(a02, A02, A02Workspace, A02Curvature, 6, {
    l0: [Residual<5, Sin>; 9],
    l1: DenseNoBias<5, 4, Sin>,
    l2: [Residual<4, Sin>; 1],
    l3: [Dense<4, 4, Sin>; 4],
    l4: Dense<4, 4, Relu>,
    l5: Dense<4, 4, Identity>,
    loss: Mse<4>,
});

// a03: depth 31, N 367, batch 3
arch32!(a03, A03, A03Workspace, A03Curvature, A03F64, A03F64Workspace, A03F64Curvature, 3, {
    l0: Dense<1, 3, Tanh>,
    l1: DenseNoBias<3, 3, Tanh>,
    l2: Residual<3, Tanh>,
    l3: [Dense<3, 3, Identity>; 27],
    l4: Dense<3, 4, Relu>,
    loss: SoftmaxCrossEntropy<4>,
});

// a04: depth 32, N 109, batch 6
arch!(a04, A04, A04Workspace, A04Curvature, 6, {
    l0: DenseNoBias<2, 1, Gelu>,
    l1: [Residual<1, Softplus>; 5],
    l2: [Residual<1, Sigmoid>; 20],
    l3: Dense<1, 2, Sin>,
    l4: Dense<2, 3, Identity>,
    l5: Residual<3, Softplus>,
    l6: [Residual<3, Identity>; 2],
    l7: Dense<3, 2, Softplus>,
    loss: SoftmaxCrossEntropy<2>,
});

// a05: depth 126, N 6802, batch 6
arch!(a05, A05, A05Workspace, A05Curvature, 6, {
    l0: DenseNoBias<4, 1, Tanh>,
    l1: Dense<1, 6, Gelu>,
    l2: Dense<6, 7, Gelu>,
    l3: [Residual<7, Sigmoid>; 15],
    l4: [Residual<7, Gelu>; 35],
    l5: [DenseNoBias<7, 7, Softplus>; 59],
    l6: Dense<7, 7, Gelu>,
    l7: Dense<7, 9, Sin>,
    l8: [DenseNoBias<9, 9, Softplus>; 10],
    l9: Dense<9, 6, Relu>,
    l10: DenseNoBias<6, 8, Silu>,
    loss: SoftmaxCrossEntropy<8>,
});

// a06: depth 16, N 280, batch 1
arch!(a06, A06, A06Workspace, A06Curvature, 1, {
    l0: [Dense<4, 4, Sigmoid>; 10],
    l1: DenseNoBias<4, 1, Relu>,
    l2: DenseNoBias<1, 4, Softplus>,
    l3: Residual<4, Identity>,
    l4: [Residual<4, Sigmoid>; 2],
    l5: DenseNoBias<4, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
});

// a07: depth 8, N 256, batch 5
arch32!(a07, A07, A07Workspace, A07Curvature, A07F64, A07F64Workspace, A07F64Curvature, 5, {
    l0: DenseNoBias<7, 3, Sigmoid>,
    l1: DenseNoBias<3, 5, Silu>,
    l2: Dense<5, 6, Gelu>,
    l3: [DenseNoBias<6, 6, Relu>; 2],
    l4: Dense<6, 6, Tanh>,
    l5: Dense<6, 5, Tanh>,
    l6: DenseNoBias<5, 7, Gelu>,
    loss: Mse<7>,
});

// a08: depth 5, N 245, batch 1
arch!(a08, A08, A08Workspace, A08Curvature, 1, {
    l0: [Dense<7, 7, Silu>; 4],
    l1: DenseNoBias<7, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
});

// a09: depth 107, N 1317, batch 8
arch!(a09, A09, A09Workspace, A09Curvature, 8, {
    l0: [DenseNoBias<3, 3, Identity>; 78],
    l1: [DenseNoBias<3, 3, Relu>; 15],
    l2: [Dense<3, 3, Silu>; 2],
    l3: Dense<3, 3, Sigmoid>,
    l4: DenseNoBias<3, 6, Relu>,
    l5: [Dense<6, 6, Sigmoid>; 6],
    l6: [Residual<6, Silu>; 3],
    l7: DenseNoBias<6, 8, Tanh>,
    loss: Mse<8>,
});

// a10: depth 17, N 27, batch 8
arch!(a10, A10, A10Workspace, A10Curvature, 8, {
    l0: DenseNoBias<1, 1, Identity>,
    l1: [Residual<1, Silu>; 7],
    l2: [DenseNoBias<1, 1, Softplus>; 8],
    l3: Dense<1, 2, Identity>,
    loss: SoftmaxCrossEntropy<2>,
});

// a11: depth 36, N 243, batch 6
arch32!(a11, A11, A11Workspace, A11Curvature, A11F64, A11F64Workspace, A11F64Curvature, 6, {
    l0: Dense<2, 1, Relu>,
    l1: Dense<1, 2, Identity>,
    l2: [Dense<2, 2, Relu>; 12],
    l3: DenseNoBias<2, 1, Sigmoid>,
    l4: [Residual<1, Sin>; 7],
    l5: DenseNoBias<1, 3, Sigmoid>,
    l6: [Dense<3, 3, Relu>; 5],
    l7: DenseNoBias<3, 3, Tanh>,
    l8: [Dense<3, 3, Sigmoid>; 2],
    l9: [Dense<3, 3, Relu>; 2],
    l10: [Residual<3, Relu>; 2],
    l11: Dense<3, 1, Identity>,
    loss: Mse<1>,
});

// a12: depth 39, N 338, batch 4
arch!(a12, A12, A12Workspace, A12Curvature, 4, {
    l0: DenseNoBias<2, 2, Sin>,
    l1: DenseNoBias<2, 3, Identity>,
    l2: [Dense<3, 3, Sin>; 21],
    l3: Dense<3, 1, Sigmoid>,
    l4: [Residual<1, Silu>; 3],
    l5: Dense<1, 1, Silu>,
    l6: Dense<1, 2, Identity>,
    l7: [Residual<2, Silu>; 7],
    l8: Residual<2, Gelu>,
    l9: Residual<2, Softplus>,
    l10: Dense<2, 2, Identity>,
    loss: SoftmaxCrossEntropy<2>,
});

// a13: depth 90, N 8728, batch 8
arch!(a13, A13, A13Workspace, A13Curvature, 8, {
    l0: [Residual<10, Sigmoid>; 79],
    l1: DenseNoBias<10, 1, Gelu>,
    l2: [Residual<1, Gelu>; 7],
    l3: [DenseNoBias<1, 1, Softplus>; 2],
    l4: DenseNoBias<1, 12, Identity>,
    loss: SoftmaxCrossEntropy<12>,
});

// a14: depth 32, N 122, batch 5
arch!(a14, A14, A14Workspace, A14Curvature, 5, {
    l0: DenseNoBias<3, 3, Identity>,
    l1: Dense<3, 1, Relu>,
    l2: DenseNoBias<1, 1, Identity>,
    l3: Dense<1, 1, Relu>,
    l4: Dense<1, 2, Sigmoid>,
    l5: Residual<2, Silu>,
    l6: DenseNoBias<2, 3, Tanh>,
    l7: Residual<3, Softplus>,
    l8: Dense<3, 1, Relu>,
    l9: DenseNoBias<1, 3, Softplus>,
    l10: DenseNoBias<3, 3, Silu>,
    l11: Residual<3, Sigmoid>,
    l12: DenseNoBias<3, 3, Softplus>,
    l13: DenseNoBias<3, 1, Sin>,
    l14: [Residual<1, Identity>; 13],
    l15: [Residual<1, Sigmoid>; 4],
    l16: Dense<1, 2, Identity>,
    loss: Mse<2>,
});

// a15: depth 10, N 64, batch 1
arch32!(a15, A15, A15Workspace, A15Curvature, A15F64, A15F64Workspace, A15F64Curvature, 1, {
    l0: DenseNoBias<5, 6, Identity>,
    l1: Dense<6, 1, Relu>,
    l2: [DenseNoBias<1, 1, Identity>; 5],
    l3: Residual<1, Sigmoid>,
    l4: DenseNoBias<1, 5, Silu>,
    l5: DenseNoBias<5, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
});

// a16: depth 36, N 333, batch 3
arch!(a16, A16, A16Workspace, A16Curvature, 3, {
    l0: Dense<2, 1, Relu>,
    l1: Dense<1, 2, Softplus>,
    l2: [Dense<2, 2, Softplus>; 5],
    l3: DenseNoBias<2, 2, Sin>,
    l4: DenseNoBias<2, 2, Identity>,
    l5: Dense<2, 3, Gelu>,
    l6: [DenseNoBias<3, 3, Identity>; 2],
    l7: [Residual<3, Tanh>; 21],
    l8: DenseNoBias<3, 1, Sigmoid>,
    l9: DenseNoBias<1, 2, Silu>,
    l10: DenseNoBias<2, 2, Sin>,
    loss: Mse<2>,
});

// a17: depth 101, N 1695, batch 3
arch!(a17, A17, A17Workspace, A17Curvature, 3, {
    l0: DenseNoBias<6, 5, Identity>,
    l1: [Residual<5, Tanh>; 30],
    l2: [Residual<5, Sin>; 13],
    l3: Dense<5, 4, Tanh>,
    l4: Residual<4, Tanh>,
    l5: [Residual<4, Tanh>; 1],
    l6: DenseNoBias<4, 6, Gelu>,
    l7: Dense<6, 3, Tanh>,
    l8: Dense<3, 2, Relu>,
    l9: [DenseNoBias<2, 2, Identity>; 46],
    l10: [Dense<2, 2, Identity>; 2],
    l11: DenseNoBias<2, 6, Identity>,
    l12: DenseNoBias<6, 6, Softplus>,
    l13: Dense<6, 2, Softplus>,
    loss: SoftmaxCrossEntropy<2>,
});

// a18: depth 31, N 512, batch 5
arch!(a18, A18, A18Workspace, A18Curvature, 5, {
    l0: [Dense<4, 4, Sigmoid>; 6],
    l1: [Residual<4, Gelu>; 10],
    l2: Dense<4, 4, Silu>,
    l3: Residual<4, Relu>,
    l4: [Residual<4, Identity>; 5],
    l5: Dense<4, 2, Identity>,
    l6: Residual<2, Identity>,
    l7: Dense<2, 2, Relu>,
    l8: [Residual<2, Relu>; 2],
    l9: [Residual<2, Sigmoid>; 2],
    l10: Dense<2, 2, Identity>,
    loss: SoftmaxCrossEntropy<2>,
});

// a19: depth 20, N 160, batch 4
arch32!(a19, A19, A19Workspace, A19Curvature, A19F64, A19F64Workspace, A19F64Curvature, 4, {
    l0: Dense<4, 3, Relu>,
    l1: Residual<3, Softplus>,
    l2: DenseNoBias<3, 2, Relu>,
    l3: Dense<2, 5, Tanh>,
    l4: DenseNoBias<5, 2, Identity>,
    l5: [Residual<2, Silu>; 11],
    l6: Dense<2, 2, Sigmoid>,
    l7: Dense<2, 4, Sin>,
    l8: DenseNoBias<4, 3, Sigmoid>,
    l9: DenseNoBias<3, 2, Identity>,
    loss: Mse<2>,
});

// a20: depth 18, N 243, batch 6
arch!(a20, A20, A20Workspace, A20Curvature, 6, {
    l0: Dense<4, 4, Sin>,
    l1: Dense<4, 4, Gelu>,
    l2: Dense<4, 3, Sin>,
    l3: [Residual<3, Gelu>; 10],
    l4: [Residual<3, Gelu>; 3],
    l5: Dense<3, 4, Relu>,
    l6: DenseNoBias<4, 4, Identity>,
    loss: SoftmaxCrossEntropy<4>,
});

// a21: depth 72, N 5046, batch 6
arch!(a21, A21, A21Workspace, A21Curvature, 6, {
    l0: Dense<13, 9, Silu>,
    l1: [DenseNoBias<9, 9, Tanh>; 15],
    l2: [Residual<9, Gelu>; 15],
    l3: Residual<9, Relu>,
    l4: [DenseNoBias<9, 9, Identity>; 24],
    l5: DenseNoBias<9, 6, Tanh>,
    l6: Residual<6, Identity>,
    l7: Residual<6, Softplus>,
    l8: Dense<6, 3, Silu>,
    l9: [Residual<3, Softplus>; 5],
    l10: DenseNoBias<3, 3, Softplus>,
    l11: Residual<3, Softplus>,
    l12: Dense<3, 3, Sin>,
    l13: Dense<3, 4, Gelu>,
    l14: Dense<4, 2, Sigmoid>,
    l15: DenseNoBias<2, 2, Softplus>,
    l16: Dense<2, 13, Silu>,
    loss: SoftmaxCrossEntropy<13>,
});

// a22: depth 35, N 202, batch 7
arch!(a22, A22, A22Workspace, A22Curvature, 7, {
    l0: Residual<2, Softplus>,
    l1: [Residual<2, Tanh>; 15],
    l2: Residual<2, Tanh>,
    l3: DenseNoBias<2, 2, Relu>,
    l4: [Residual<2, Sigmoid>; 15],
    l5: DenseNoBias<2, 2, Tanh>,
    l6: DenseNoBias<2, 1, Sin>,
    loss: Mse<1>,
});

// a23: depth 5, N 62, batch 5
arch32!(a23, A23, A23Workspace, A23Curvature, A23F64, A23F64Workspace, A23F64Curvature, 5, {
    l0: DenseNoBias<4, 5, Gelu>,
    l1: Dense<5, 2, Sin>,
    l2: [Dense<2, 2, Identity>; 2],
    l3: Dense<2, 6, Relu>,
    loss: Mse<6>,
});

// a24: depth 39, N 268, batch 8
arch!(a24, A24, A24Workspace, A24Curvature, 8, {
    l0: [DenseNoBias<3, 3, Gelu>; 27],
    l1: Dense<3, 1, Sin>,
    l2: [Residual<1, Sin>; 10],
    l3: DenseNoBias<1, 1, Silu>,
    loss: Mse<1>,
});

// a25: depth 12, N 211, batch 4
arch!(a25, A25, A25Workspace, A25Curvature, 4, {
    l0: Dense<3, 2, Identity>,
    l1: [Residual<2, Tanh>; 5],
    l2: Dense<2, 6, Sin>,
    l3: Dense<6, 5, Relu>,
    l4: [Dense<5, 5, Tanh>; 3],
    l5: DenseNoBias<5, 6, Identity>,
    loss: SoftmaxCrossEntropy<6>,
});

// a26: depth 16, N 173, batch 7
arch!(a26, A26, A26Workspace, A26Curvature, 7, {
    l0: [Dense<3, 3, Identity>; 10],
    l1: Dense<3, 2, Sin>,
    l2: [Residual<2, Silu>; 2],
    l3: DenseNoBias<2, 5, Sin>,
    l4: DenseNoBias<5, 3, Sigmoid>,
    l5: Dense<3, 2, Identity>,
    loss: SoftmaxCrossEntropy<2>,
});

// a27: depth 15, N 84, batch 7
arch32!(a27, A27, A27Workspace, A27Curvature, A27F64, A27F64Workspace, A27F64Curvature, 7, {
    l0: Dense<1, 2, Sigmoid>,
    l1: [Residual<2, Softplus>; 10],
    l2: [Residual<2, Relu>; 2],
    l3: DenseNoBias<2, 1, Sin>,
    l4: Dense<1, 3, Identity>,
    loss: Mse<3>,
});

// a28: depth 6, N 197, batch 4
arch!(a28, A28, A28Workspace, A28Curvature, 4, {
    l0: Dense<4, 5, Sigmoid>,
    l1: Dense<5, 2, Identity>,
    l2: Dense<2, 8, Softplus>,
    l3: DenseNoBias<8, 7, Tanh>,
    l4: Residual<7, Silu>,
    l5: Dense<7, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
});

// a29: depth 14, N 78, batch 6
arch!(a29, A29, A29Workspace, A29Curvature, 6, {
    l0: Dense<1, 2, Softplus>,
    l1: [Dense<2, 2, Sigmoid>; 12],
    l2: DenseNoBias<2, 1, Identity>,
    loss: Mse<1>,
});

// a30: depth 8, N 187, batch 5
arch!(a30, A30, A30Workspace, A30Curvature, 5, {
    l0: Dense<5, 4, Silu>,
    l1: Dense<4, 4, Sin>,
    l2: Dense<4, 5, Identity>,
    l3: [Residual<5, Relu>; 2],
    l4: DenseNoBias<5, 5, Silu>,
    l5: Dense<5, 3, Relu>,
    l6: DenseNoBias<3, 5, Identity>,
    loss: Mse<5>,
});

// a31: depth 12, N 217, batch 5
arch32!(a31, A31, A31Workspace, A31Curvature, A31F64, A31F64Workspace, A31F64Curvature, 5, {
    l0: Dense<5, 2, Silu>,
    l1: DenseNoBias<2, 3, Sin>,
    l2: Dense<3, 3, Identity>,
    l3: DenseNoBias<3, 6, Identity>,
    l4: Residual<6, Gelu>,
    l5: DenseNoBias<6, 6, Sigmoid>,
    l6: DenseNoBias<6, 4, Sin>,
    l7: Dense<4, 3, Gelu>,
    l8: [Residual<3, Identity>; 3],
    l9: Dense<3, 4, Silu>,
    loss: Mse<4>,
});

// a32: depth 31, N 498, batch 6
arch!(a32, A32, A32Workspace, A32Curvature, 6, {
    l0: DenseNoBias<4, 1, Silu>,
    l1: Dense<1, 1, Silu>,
    l2: Dense<1, 4, Sigmoid>,
    l3: [DenseNoBias<4, 4, Identity>; 7],
    l4: Residual<4, Sin>,
    l5: Residual<4, Softplus>,
    l6: [DenseNoBias<4, 4, Relu>; 9],
    l7: [Dense<4, 4, Softplus>; 4],
    l8: [Residual<4, Tanh>; 3],
    l9: [DenseNoBias<4, 4, Sigmoid>; 2],
    l10: DenseNoBias<4, 4, Sigmoid>,
    loss: Mse<4>,
});

// a33: depth 11, N 66, batch 1
arch!(a33, A33, A33Workspace, A33Curvature, 1, {
    l0: [DenseNoBias<2, 2, Tanh>; 6],
    l1: DenseNoBias<2, 6, Sin>,
    l2: Dense<6, 2, Tanh>,
    l3: [Dense<2, 2, Softplus>; 2],
    l4: DenseNoBias<2, 2, Tanh>,
    loss: SoftmaxCrossEntropy<2>,
});

// a34: depth 29, N 176, batch 1
arch!(a34, A34, A34Workspace, A34Curvature, 1, {
    l0: Dense<4, 2, Silu>,
    l1: [Residual<2, Sin>; 20],
    l2: Residual<2, Sin>,
    l3: [Residual<2, Sigmoid>; 2],
    l4: [Dense<2, 2, Softplus>; 2],
    l5: [Residual<2, Silu>; 2],
    l6: DenseNoBias<2, 2, Identity>,
    loss: SoftmaxCrossEntropy<2>,
});

// a35: depth 5, N 288, batch 1
arch32!(a35, A35, A35Workspace, A35Curvature, A35F64, A35F64Workspace, A35F64Curvature, 1, {
    l0: DenseNoBias<3, 8, Gelu>,
    l1: [Residual<8, Sigmoid>; 3],
    l2: DenseNoBias<8, 6, Relu>,
    loss: Mse<6>,
});

// a36: depth 11, N 64, batch 1
arch!(a36, A36, A36Workspace, A36Curvature, 1, {
    l0: DenseNoBias<2, 2, Identity>,
    l1: [Residual<2, Silu>; 2],
    l2: [Residual<2, Gelu>; 6],
    l3: [Residual<2, Identity>; 1],
    l4: DenseNoBias<2, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
});

// a37: depth 7, N 121, batch 7
arch!(a37, A37, A37Workspace, A37Curvature, 7, {
    l0: Dense<6, 7, Sin>,
    l1: DenseNoBias<7, 2, Tanh>,
    l2: [Residual<2, Identity>; 3],
    l3: Dense<2, 8, Sin>,
    l4: DenseNoBias<8, 2, Identity>,
    loss: SoftmaxCrossEntropy<2>,
});

// a38: depth 6, N 62, batch 8
arch!(a38, A38, A38Workspace, A38Curvature, 8, {
    l0: Dense<9, 2, Relu>,
    l1: [Dense<2, 2, Softplus>; 4],
    l2: Dense<2, 6, Gelu>,
    loss: Mse<6>,
});

// a39: depth 23, N 450, batch 5
arch32!(a39, A39, A39Workspace, A39Curvature, A39F64, A39F64Workspace, A39F64Curvature, 5, {
    l0: [Residual<4, Identity>; 20],
    l1: [Residual<4, Relu>; 2],
    l2: Dense<4, 2, Identity>,
    loss: Mse<2>,
});

// a40: depth 7, N 92, batch 7
arch!(a40, A40, A40Workspace, A40Curvature, 7, {
    l0: [Dense<3, 3, Relu>; 6],
    l1: Dense<3, 5, Relu>,
    loss: SoftmaxCrossEntropy<5>,
});

// a41: depth 2, N 77, batch 1
arch!(a41, A41, A41Workspace, A41Curvature, 1, {
    l0: DenseNoBias<8, 4, Relu>,
    l1: Dense<4, 9, Identity>,
    loss: SoftmaxCrossEntropy<9>,
});

// a42: depth 9, N 441, batch 8
arch!(a42, A42, A42Workspace, A42Curvature, 8, {
    l0: DenseNoBias<7, 7, Silu>,
    l1: Residual<7, Softplus>,
    l2: [Residual<7, Sigmoid>; 3],
    l3: [DenseNoBias<7, 7, Silu>; 2],
    l4: Residual<7, Identity>,
    l5: DenseNoBias<7, 2, Sin>,
    loss: SoftmaxCrossEntropy<2>,
});

// a43: depth 14, N 168, batch 7
arch32!(a43, A43, A43Workspace, A43Curvature, A43F64, A43F64Workspace, A43F64Curvature, 7, {
    l0: Dense<3, 3, Softplus>,
    l1: [Dense<3, 3, Identity>; 12],
    l2: DenseNoBias<3, 4, Tanh>,
    loss: Mse<4>,
});

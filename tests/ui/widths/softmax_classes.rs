use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Classifier {
    inp: Dense<4, 32, Relu>,
    head: DenseNoBias<32, 10, Identity>,
    loss: SoftmaxCrossEntropy<9>,
}

fn main() {}

//! Dense references for the solve tests (`tests/it/solve.rs`): a dense Hessian assembled column
//! by column from `hvp`, a partial-pivoting LU solve, and the eigenvalues of a symmetric
//! matrix (Householder tridiagonalisation + implicit QL).
//!
//! Why not nalgebra's decompositions directly: in a debug build (how `cargo test` runs in CI)
//! nalgebra's generic code is 10-20x slower than these plain loops (LU of n = 400: 1.9 s vs
//! 0.25 s; symmetric eigenvalues of n = 400: 7 s), and the suite needs a few dozen dense
//! references of n ~ 100-400. Both routines here are textbook algorithms and are checked
//! against nalgebra's `full_piv_lu` and `symmetric_eigenvalues` on random symmetric matrices
//! and on a real network Hessian (`dense_kit_matches_nalgebra` in `tests/it/solve.rs`).

/// `sum x_i y_i`. The three kernels below are raw-pointer `while` loops because a debug
/// build does not inline: bounds-checked indexing or iterator adapters cost a function call
/// per element there (2-3x slower overall). Lengths are asserted before the loop.
pub fn dot(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len());
    let (px, py, n) = (x.as_ptr(), y.as_ptr(), x.len());
    let mut s = 0.0;
    let mut i = 0;
    while i < n {
        // SAFETY: i < n = x.len() = y.len().
        s += unsafe { *px.add(i) * *py.add(i) };
        i += 1;
    }
    s
}

/// `y += a x`.
pub fn axpy(y: &mut [f64], a: f64, x: &[f64]) {
    assert_eq!(x.len(), y.len());
    let (py, px, n) = (y.as_mut_ptr(), x.as_ptr(), x.len());
    let mut i = 0;
    while i < n {
        // SAFETY: i < n = x.len() = y.len(); x and y are distinct borrows.
        unsafe { *py.add(i) += a * *px.add(i) };
        i += 1;
    }
}

/// `y += a x + b z`.
pub fn axpy2(y: &mut [f64], a: f64, x: &[f64], b: f64, z: &[f64]) {
    assert!(x.len() == y.len() && z.len() == y.len());
    let (py, px, pz, n) = (y.as_mut_ptr(), x.as_ptr(), z.as_ptr(), y.len());
    let mut i = 0;
    while i < n {
        // SAFETY: i < n, the common length; y is borrowed exclusively, x and z shared.
        unsafe { *py.add(i) += a * *px.add(i) + b * *pz.add(i) };
        i += 1;
    }
}

/// A dense n x n matrix, row-major.
#[derive(Clone, Debug)]
pub struct Mat {
    pub n: usize,
    pub a: Vec<f64>,
}

impl Mat {
    pub fn zeros(n: usize) -> Self {
        Self {
            n,
            a: vec![0.0; n * n],
        }
    }

    #[inline]
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.a[i * self.n + j]
    }

    /// `(self + shift I) v`.
    pub fn mul_shifted(&self, shift: f64, v: &[f64]) -> Vec<f64> {
        let n = self.n;
        assert_eq!(v.len(), n);
        (0..n)
            .map(|i| shift * v[i] + dot(&self.a[i * n..(i + 1) * n], v))
            .collect()
    }

    /// Frobenius norm.
    pub fn frobenius(&self) -> f64 {
        norm(&self.a)
    }

    /// `self + shift I` as an nalgebra matrix (for the cross-checks).
    pub fn to_nalgebra(&self, shift: f64) -> nalgebra::DMatrix<f64> {
        let n = self.n;
        nalgebra::DMatrix::from_fn(n, n, |i, j| {
            self.at(i, j) + if i == j { shift } else { 0.0 }
        })
    }
}

/// Dense Hessian from `n` Hessian-vector products `hvp(e_j) = H e_j` (column j), then
/// symmetrised. Returns the symmetrised matrix and the relative asymmetry
/// `|H - H'|_F / |H|_F` of the raw columns (hvp is exact up to rounding, so this is tiny).
pub fn dense_from_hvp(n: usize, mut hvp: impl FnMut(&[f64], &mut [f64])) -> (Mat, f64) {
    let mut h = Mat::zeros(n);
    let mut e = vec![0.0; n];
    let mut col = vec![0.0; n];
    for j in 0..n {
        e[j] = 1.0;
        hvp(&e, &mut col);
        e[j] = 0.0;
        for (i, c) in col.iter().enumerate() {
            h.a[i * n + j] = *c;
        }
    }
    let mut asym = 0.0;
    for i in 0..n {
        for j in 0..i {
            let (x, y) = (h.a[i * n + j], h.a[j * n + i]);
            asym += 2.0 * (x - y) * (x - y);
            let m = 0.5 * (x + y);
            h.a[i * n + j] = m;
            h.a[j * n + i] = m;
        }
    }
    let asym = asym.sqrt() / h.frobenius();
    (h, asym)
}

/// Solves `(h + shift I) x = b` by LU with partial (row) pivoting, the LAPACK `gesv`
/// algorithm. Panics on an exactly zero pivot (never happens in these tests).
pub fn lu_solve(h: &Mat, shift: f64, b: &[f64]) -> Vec<f64> {
    let n = h.n;
    let mut a = h.a.clone();
    for i in 0..n {
        a[i * n + i] += shift;
    }
    let mut x = b.to_vec();
    for k in 0..n {
        let mut p = k;
        for i in k + 1..n {
            if a[i * n + k].abs() > a[p * n + k].abs() {
                p = i;
            }
        }
        assert!(a[p * n + k] != 0.0, "exactly singular dense matrix");
        if p != k {
            for j in 0..n {
                a.swap(k * n + j, p * n + j);
            }
            x.swap(k, p);
        }
        let (top, bottom) = a.split_at_mut((k + 1) * n);
        let rk = &top[k * n + k..(k + 1) * n];
        let piv = rk[0];
        let xk = x[k];
        for i in 0..n - k - 1 {
            let ri = &mut bottom[i * n + k..(i + 1) * n];
            let l = ri[0] / piv;
            ri[0] = l;
            axpy(&mut ri[1..], -l, &rk[1..]);
            x[k + 1 + i] -= l * xk;
        }
    }
    for k in (0..n).rev() {
        let row = &a[k * n..(k + 1) * n];
        x[k] = (x[k] - dot(&row[k + 1..], &x[k + 1..])) / row[k];
    }
    x
}

/// `|a|` with the sign of `b`.
fn sign(a: f64, b: f64) -> f64 {
    if b >= 0.0 {
        a.abs()
    } else {
        -a.abs()
    }
}

/// Eigenvalues of the symmetric matrix `h`, ascending: Householder reduction to tridiagonal
/// form (as Numerical Recipes `tred2` without eigenvectors, but keeping the full symmetric
/// leading block so every inner loop runs along a contiguous row), then the implicit QL
/// iteration with Wilkinson-type shifts (`tqli`).
pub fn sym_eigenvalues(h: &Mat) -> Vec<f64> {
    let n = h.n;
    let mut a = h.a.clone();
    let mut d = vec![0.0; n];
    let mut e = vec![0.0; n];
    let mut u = vec![0.0; n];
    let mut p = vec![0.0; n];
    // Step i annihilates row i left of the subdiagonal with the reflector I - u u'/hh acting on
    // the leading (i x i) block: A <- (I - u u'/hh) A (I - u u'/hh).
    for i in (1..n).rev() {
        let l = i - 1;
        let m = l + 1;
        let row = &a[i * n..i * n + m];
        let scale: f64 = row.iter().map(|v| v.abs()).sum();
        if l == 0 || scale == 0.0 {
            e[i] = a[i * n + l];
            continue;
        }
        for k in 0..m {
            u[k] = a[i * n + k] / scale;
        }
        let mut hh = dot(&u[..m], &u[..m]);
        let f = u[l];
        let g = if f >= 0.0 { -hh.sqrt() } else { hh.sqrt() };
        e[i] = scale * g;
        hh -= f * g;
        u[l] = f - g;
        for j in 0..m {
            p[j] = dot(&a[j * n..j * n + m], &u[..m]) / hh;
        }
        let kk = dot(&u[..m], &p[..m]) / (hh + hh);
        for j in 0..m {
            p[j] -= kk * u[j];
        }
        // A <- A - u q' - q u'  (q = p - kk u), the whole symmetric block.
        for j in 0..m {
            let (uj, qj) = (u[j], p[j]);
            axpy2(&mut a[j * n..j * n + m], -uj, &p[..m], -qj, &u[..m]);
        }
    }
    for i in 0..n {
        d[i] = a[i * n + i];
    }
    // Implicit QL on the tridiagonal (d, e): e[i] couples i and i + 1.
    for i in 1..n {
        e[i - 1] = e[i];
    }
    if n > 0 {
        e[n - 1] = 0.0;
    }
    for l in 0..n {
        let mut iter = 0;
        loop {
            let mut m = l;
            while m + 1 < n {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            iter += 1;
            assert!(iter < 100, "QL iteration did not converge");
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let mut r = g.hypot(1.0);
            g = d[m] - d[l] + e[l] / (g + sign(r, g));
            let (mut s, mut c, mut p) = (1.0, 1.0, 0.0);
            let mut deflated = false;
            let mut i = m;
            while i > l {
                i -= 1;
                let f = s * e[i];
                let b = c * e[i];
                r = f.hypot(g);
                e[i + 1] = r;
                if r == 0.0 {
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    deflated = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
            }
            if deflated {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    d.sort_by(|x, y| x.partial_cmp(y).unwrap());
    d
}

pub fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// `|x - y| / |y|`.
pub fn rel_err(x: &[f64], y: &[f64]) -> f64 {
    let d: Vec<f64> = x.iter().zip(y).map(|(a, b)| a - b).collect();
    norm(&d) / norm(y)
}

/// `|(h + shift I) x - b| / |b|`, the product computed densely.
pub fn rel_residual(h: &Mat, shift: f64, x: &[f64], b: &[f64]) -> f64 {
    let ax = h.mul_shifted(shift, x);
    let r: Vec<f64> = ax.iter().zip(b).map(|(a, b)| a - b).collect();
    norm(&r) / norm(b)
}

/// Spectral condition number of `H + shift I` from the eigenvalues of `H`.
pub fn cond(eig: &[f64], shift: f64) -> f64 {
    let max = eig.iter().map(|l| (l + shift).abs()).fold(0.0, f64::max);
    let min = eig
        .iter()
        .map(|l| (l + shift).abs())
        .fold(f64::INFINITY, f64::min);
    max / min
}

/// Inertia (negative, zero, positive) of `H + shift I` from the eigenvalues of `H`, when
/// every shifted eigenvalue is farther than `margin` from zero; `None` otherwise (then the
/// sign of some eigenvalue is not decided by a float64 dense computation).
pub fn inertia_of(eig: &[f64], shift: f64, margin: f64) -> Option<(usize, usize, usize)> {
    if eig.iter().any(|l| (l + shift).abs() <= margin) {
        return None;
    }
    let neg = eig.iter().filter(|l| *l + shift < 0.0).count();
    Some((neg, 0, eig.len() - neg))
}

/// A reproducible random symmetric matrix with entries uniform in [-1, 1).
pub fn random_symmetric(n: usize, seed: u64) -> Mat {
    let mut rng = tall_skinny::runtime::SplitMix64::new(seed);
    let mut m = Mat::zeros(n);
    for i in 0..n {
        for j in 0..=i {
            let v = rng.symmetric();
            m.a[i * n + j] = v;
            m.a[j * n + i] = v;
        }
    }
    m
}

/// Rows of a results table: (architecture, eps) -> worst errors over the draws.
#[derive(Default)]
pub struct Table {
    rows: Vec<Row>,
}

#[derive(Clone, Debug)]
pub struct Row {
    pub arch: String,
    pub n: usize,
    pub eps: f64,
    pub draws: usize,
    pub cond_max: f64,
    pub lambda_min: f64,
    pub plain: f64,
    pub refined: f64,
    pub lu_residual: f64,
}

impl Table {
    pub fn add(&mut self, r: Row) {
        if let Some(old) = self
            .rows
            .iter_mut()
            .find(|o| o.arch == r.arch && o.eps == r.eps)
        {
            old.draws += r.draws;
            old.cond_max = old.cond_max.max(r.cond_max);
            old.lambda_min = old.lambda_min.min(r.lambda_min);
            old.plain = old.plain.max(r.plain);
            old.refined = old.refined.max(r.refined);
            old.lu_residual = old.lu_residual.max(r.lu_residual);
        } else {
            self.rows.push(r);
        }
    }

    pub fn render(&self) -> String {
        let mut s = String::from(
            "| arch | N | eps | draws | max cond(H+eps I) | min eig(H) | plain solve rel err | refined (hessian_solve) rel err | dense LU residual |\n|---|---|---|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            s += &format!(
                "| {} | {} | {:e} | {} | {:.2e} | {:.2e} | {:.2e} | {:.2e} | {:.1e} |\n",
                r.arch,
                r.n,
                r.eps,
                r.draws,
                r.cond_max,
                r.lambda_min,
                r.plain,
                r.refined,
                r.lu_residual
            );
        }
        s
    }
}

// ---------------------------------------------------------------------------------------------
// Random problems shared by solve.rs, laplace.rs and predictive.rs

/// A heap vector of length `N` as `Box<[f64; N]>` (deep nets: keep big arrays off the 2 MiB
/// test-thread stacks; panics unless `v.len() == N`).
pub fn boxed_vec<const N: usize>(v: Vec<f64>) -> Box<[f64; N]> {
    v.try_into().expect("length N")
}

/// `Net::init(seed)` (LeCun-scaled weights, zero biases), then every parameter plus
/// `delta * U(-1, 1)` (so biases are non-zero and the draws differ), then times `scale`
/// (default 1).
macro_rules! random_net {
    ($net:ident, $seed:expr, $delta:expr) => {
        $crate::solve_common::random_net!($net, $seed, $delta, 1.0)
    };
    ($net:ident, $seed:expr, $delta:expr, $scale:expr) => {{
        const N: usize = $net::N_PARAMS;
        let seed: u64 = $seed;
        let mut net = $net::init(seed);
        let mut p: Box<[f64; N]> = $crate::solve_common::boxed_vec(vec![0.0; N]);
        net.params(&mut p);
        let mut rng = tall_skinny::runtime::SplitMix64::new(
            seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x1234_5678,
        );
        for v in p.iter_mut() {
            *v = $scale * (*v + $delta * rng.symmetric());
        }
        net.set_params(&p).unwrap();
        net
    }};
}
pub(crate) use random_net;

/// A batch of inputs of `$net`, entries `U(-1, 1)` from `$rng`.
macro_rules! inputs {
    ($net:ident, $rng:expr) => {{
        let rng: &mut tall_skinny::runtime::SplitMix64 = $rng;
        let x: [[f64; $net::INPUTS]; $net::BATCH] =
            core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()));
        x
    }};
}
pub(crate) use inputs;

/// A batch of targets of `$net`: `U(-1, 1)` rows (`mse`) or uniform labels (`softmax`).
macro_rules! targets {
    (mse, $net:ident, $rng:expr) => {{
        let rng: &mut tall_skinny::runtime::SplitMix64 = $rng;
        let t: [[f64; $net::OUTPUTS]; $net::BATCH] =
            core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()));
        t
    }};
    (softmax, $net:ident, $rng:expr) => {{
        let rng: &mut tall_skinny::runtime::SplitMix64 = $rng;
        let t: [usize; $net::BATCH] =
            core::array::from_fn(|_| (rng.next_u64() % $net::OUTPUTS as u64) as usize);
        t
    }};
}
pub(crate) use targets;

//! The Riccati sweep with delayed pivots (docs/math.md section 7) on the dense stage blocks of a
//! generated net (`StageView`), in the net's precision: a reference for the structured
//! implementation, used by `tests/it/delayed_sweep.rs` and `examples/accuracy_report.rs`.

use nalgebra::{DMatrix, DVector, SMatrix};
use tall_skinny::runtime::__private::StageView;
use tall_skinny::runtime::__private::{DelayedLdlt, SingularPivot};
use tall_skinny::runtime::Real;

/// One stage's dense blocks (docs/math.md section 1), in the net's precision.
pub struct DenseStage<T: Real> {
    a: DMatrix<T>,
    b: DMatrix<T>,
    hxx: DMatrix<T>,
    hxz: DMatrix<T>,
    hzz: DMatrix<T>,
}

/// Storage of the stage block `[v; carried]`: up to `NMAX - p` carried variables.
pub const NMAX: usize = 256;

/// What one delayed-pivot solve reports.
pub struct DelayedStats {
    /// Most variables carried into any stage.
    pub max_carried: usize,
    /// Largest `|S|` (max entry) over the sweep.
    pub max_s: f64,
    /// Negative eigenvalues of `H + eps I` (from the eliminated pivots).
    pub negative: usize,
}

/// A net's `for_each_stage`, as a closure.
pub type StageVisit<'a, T> = &'a dyn Fn(&mut dyn FnMut(&dyn StageView<T>));

/// Every stage's dense blocks, in order, and the last stage's loss Hessian.
pub fn dense_stages<T: Real>(visit: StageVisit<'_, T>) -> (Vec<DenseStage<T>>, DMatrix<T>) {
    let mut out = Vec::new();
    let mut s_last = DMatrix::<T>::zeros(0, 0);
    visit(&mut |st: &dyn StageView<T>| {
        let (ai, ao, p) = (st.input_len(), st.output_len(), st.param_len());
        let mut a = vec![T::ZERO; ao * ai];
        let mut b = vec![T::ZERO; ao * p];
        let mut hxx = vec![T::ZERO; p * p];
        let mut hxz = vec![T::ZERO; p * ai];
        let mut hzz = vec![T::ZERO; ai * ai];
        st.dense_blocks(&mut a, &mut b, &mut hxx, &mut hxz, &mut hzz);
        let mut s = vec![T::ZERO; ao * ao];
        st.output_hessian(&mut s);
        s_last = DMatrix::from_column_slice(ao, ao, &s);
        out.push(DenseStage {
            a: DMatrix::from_column_slice(ao, ai, &a),
            b: DMatrix::from_column_slice(ao, p, &b),
            hxx: DMatrix::from_column_slice(p, p, &hxx),
            hxz: DMatrix::from_column_slice(p, ai, &hxz),
            hzz: DMatrix::from_column_slice(ai, ai, &hzz),
        });
    });
    (out, s_last)
}

/// `x = (H + eps I)^{-1} g` by the Riccati sweep on the dense stage blocks with delayed
/// pivots (docs/math.md section 7): at each stage the block of `[parameters; carried variables]`
/// is factored by [`DelayedLdlt`] with threshold `tau` against its coupling to the stage
/// input, and what is not eliminated is carried to the stage before (at most `max_carried`);
/// the first stage eliminates everything. Every operation in precision `T`; `M` is the stage
/// input size (the same for every stage of these nets). `tau = 0` is the plain generic sweep.
///
/// With `compress`, a carried set larger than `M` is rotated (a QR of its coupling `Gamma`)
/// so that only `M` of its directions couple to the state; the others are eliminated at once
/// against the kept ones (their block of `Lambda`, dense LU), so at most `M` variables are
/// carried.
#[allow(clippy::too_many_arguments)]
pub fn delayed_solve<T: Real, const M: usize>(
    stages: &[DenseStage<T>],
    s_last: &DMatrix<T>,
    eps: T,
    g: &[T],
    tau: T,
    max_carried: usize,
    compress: bool,
) -> Result<(Vec<T>, DelayedStats), SingularPivot> {
    let l_count = stages.len();
    let offsets: Vec<usize> = stages
        .iter()
        .scan(0, |o, st| {
            let at = *o;
            *o += st.hxx.nrows();
            Some(at)
        })
        .collect();
    let mut facs: Vec<Box<DelayedLdlt<T, NMAX>>> = Vec::new();
    // per stage: the rotation, the eliminated block's LU, its coupling to the kept ones and
    // its linear term
    type Compressed<T> = (
        DMatrix<T>,
        nalgebra::linalg::LU<T, nalgebra::Dyn, nalgebra::Dyn>,
        DMatrix<T>,
        DVector<T>,
    );
    let mut comp: Vec<Option<Compressed<T>>> = Vec::new();
    let mut ns: Vec<DMatrix<T>> = Vec::new();
    let mut qs: Vec<DVector<T>> = Vec::new();
    let mut s = s_last.clone();
    let mut lin = DVector::<T>::zeros(s.nrows());
    let mut gamma = DMatrix::<T>::zeros(0, s.nrows());
    let mut lambda = DMatrix::<T>::zeros(0, 0);
    let mut tlin = DVector::<T>::zeros(0);
    let mut stats = DelayedStats {
        max_carried: 0,
        max_s: s.amax().to_f64(),
        negative: 0,
    };
    for l in (0..l_count).rev() {
        let st = &stages[l];
        let (p, r) = (st.hxx.nrows(), gamma.nrows());
        let n = p + r;
        assert!(n <= NMAX && st.a.ncols() == M);
        stats.max_carried = stats.max_carried.max(r);
        let bs = st.b.transpose() * &s;
        let mut q11 = &st.hxx + &bs * &st.b;
        for i in 0..p {
            q11[(i, i)] += eps;
        }
        let q21 = &gamma * &st.b;
        let n1 = &st.hxz + &bs * &st.a;
        let n2 = &gamma * &st.a;
        let mut q = DVector::<T>::zeros(n);
        let q1 = st.b.transpose() * &lin;
        for i in 0..p {
            q[i] = q1[i] - g[offsets[l] + i];
        }
        for i in 0..r {
            q[p + i] = tlin[i];
        }
        let mut f: Box<DelayedLdlt<T, NMAX>> = tall_skinny::boxed_zeroed();
        let mut jt = SMatrix::<T, M, NMAX>::zeros();
        let mut nfull = DMatrix::<T>::zeros(n, M);
        {
            let m = f.matrix_mut();
            for j in 0..n {
                for i in j..n {
                    m[(i, j)] = match (i < p, j < p) {
                        (true, true) => q11[(i, j)],
                        (false, true) => q21[(i - p, j)],
                        (false, false) => lambda[(i - p, j - p)],
                        (true, false) => unreachable!(),
                    };
                }
            }
            for c in 0..n {
                for row in 0..M {
                    let v = if c < p {
                        n1[(c, row)]
                    } else {
                        n2[(c - p, row)]
                    };
                    jt[(row, c)] = v;
                    nfull[(c, row)] = v;
                }
            }
        }
        let (tau_l, cap) = if l == 0 {
            (T::ZERO, 0)
        } else {
            (tau, max_carried.min(NMAX - stages[l - 1].hxx.nrows()))
        };
        let inertia = f.factor(n, &mut jt, tau_l, cap)?;
        stats.negative += inertia.negative;
        let ne = f.eliminated();
        // the value at the stage input
        let mut sp = SMatrix::<T, M, M>::zeros();
        let base = &st.hzz + st.a.transpose() * &s * &st.a;
        for c in 0..M {
            for row in 0..M {
                sp[(row, c)] = base[(row, c)];
            }
        }
        f.sub_quadratic_rows(&jt, &mut sp);
        let mut z = vec![T::ZERO; NMAX];
        z[..n].copy_from_slice(q.as_slice());
        f.forward(&mut z);
        let mut zd = z.clone();
        f.d_solve(&mut zd);
        let mut lin_new = st.a.transpose() * &lin;
        for row in 0..M {
            let mut acc = T::ZERO;
            for k in 0..ne {
                acc += jt[(row, k)] * zd[k];
            }
            lin_new[row] -= acc;
        }
        let rd = n - ne;
        gamma = DMatrix::zeros(rd, M);
        lambda = DMatrix::zeros(rd, rd);
        tlin = DVector::zeros(rd);
        for i in 0..rd {
            for row in 0..M {
                gamma[(i, row)] = jt[(row, ne + i)];
            }
            for j in 0..rd {
                lambda[(i, j)] = f.schur(i, j);
            }
            tlin[i] = z[ne + i];
        }
        let mut record = None;
        if compress && rd > M && l > 0 {
            // [Gamma | I] = Q R: Q' Gamma has rows M.. zero
            let mut aug = DMatrix::<T>::zeros(rd, M + rd);
            aug.view_mut((0, 0), (rd, M)).copy_from(&gamma);
            for i in 0..rd {
                aug[(i, M + i)] = T::ONE;
            }
            let qm = aug.qr().q();
            let gt = qm.transpose() * &gamma;
            let lt = qm.transpose() * &lambda * &qm;
            let tt = qm.transpose() * &tlin;
            let k = rd - M;
            let l22 = lt.view((M, M), (k, k)).into_owned();
            let l21 = lt.view((M, 0), (k, M)).into_owned();
            let t2 = tt.rows(M, k).into_owned();
            stats.negative += l22
                .clone()
                .symmetric_eigen()
                .eigenvalues
                .iter()
                .filter(|v| **v < T::ZERO)
                .count();
            let lu = l22.lu();
            let x21 = lu.solve(&l21).ok_or(SingularPivot)?;
            let xt2 = lu.solve(&t2).ok_or(SingularPivot)?;
            lambda = lt.view((0, 0), (M, M)).into_owned() - l21.transpose() * x21;
            tlin = tt.rows(0, M).into_owned() - l21.transpose() * xt2;
            gamma = gt.view((0, 0), (M, M)).into_owned();
            record = Some((qm, lu, l21, t2));
        }
        comp.push(record);
        s = DMatrix::from_fn(M, M, |i, j| sp[(i, j)]);
        // (sub_quadratic_rows keeps s symmetric; average the rounding)
        s = (&s + s.transpose()) * T::c(0.5);
        if l > 0 {
            // (the first stage's input is data: its value Hessian is never used)
            stats.max_s = stats.max_s.max(s.amax().to_f64());
        }
        lin = lin_new;
        facs.push(f);
        ns.push(nfull);
        qs.push(q);
    }
    facs.reverse();
    comp.reverse();
    ns.reverse();
    qs.reverse();
    // forward: each stage's stationarity with its carried-out values from the stage before
    let mut x = vec![T::ZERO; g.len()];
    let mut y = DVector::<T>::zeros(M);
    let mut carried_values: Vec<T> = Vec::new();
    for l in 0..l_count {
        let (f, st) = (&facs[l], &stages[l]);
        let (n, ne, p) = (f.size(), f.eliminated(), st.hxx.nrows());
        let rhs = -(&ns[l] * &y + &qs[l]);
        let mut w = vec![T::ZERO; NMAX];
        w[..n].copy_from_slice(rhs.as_slice());
        f.forward(&mut w);
        f.d_solve(&mut w);
        if let Some((qm, lu, l21, t2)) = &comp[l] {
            // the kept directions' values came from the stage before; the others follow
            let w1 = DVector::from_column_slice(&carried_values);
            let w2 = lu.solve(&(-(l21 * &w1) - t2)).ok_or(SingularPivot)?;
            let mut wt = DVector::<T>::zeros(qm.nrows());
            wt.rows_mut(0, M).copy_from(&w1);
            wt.rows_mut(M, w2.nrows()).copy_from(&w2);
            carried_values = (qm * wt).as_slice().to_vec();
        }
        assert_eq!(carried_values.len(), n - ne);
        w[ne..n].copy_from_slice(&carried_values);
        f.backward(&mut w);
        x[offsets[l]..offsets[l] + p].copy_from_slice(&w[..p]);
        // this stage's extra variables are stage l + 1's delayed ones, in position order
        carried_values = w[p..n].to_vec();
        let v = DVector::from_column_slice(&w[..p]);
        y = &st.a * &y + &st.b * v;
    }
    Ok((x, stats))
}

#!/usr/bin/env python3
"""Numerical checks of the identities stated in docs/math.md.

Run from the repository root (not part of the Rust build or CI):

    python3 docs/check_math.py          # Python 3.9+ and numpy (pip install numpy); ~10 s

It prints one line per check, labelled with the docs/math.md section it belongs to
("[4] ..."; "[0]" for the references themselves), and docs/math.md quotes these lines.
Lines ending in "ok" are asserted against a tolerance; the others are measurements.
Everything is deterministic (fixed seeds). Exit status 1 if any asserted check fails.

What it builds: small random chains in the crate's own conventions (runtime/src/layer.rs:
flat parameters W row-major then b, activations one column per sample, i.e. sample-major
vectors), with Dense, DenseNoBias and Residual tanh layers, an Identity output layer and an
MSE or softmax cross-entropy loss, at batch 1 to 3. Its references do not use the block
formulas under test:

  * the dense Hessian by the complex step, column j = Im(grad(theta + i h e_j)) / h with
    h = 1e-30, of a plain back-propagated gradient (itself checked against the complex step
    of the loss); the output Jacobian J the same way from the forward pass;
  * dense solves, slogdet, eigenvalues and inverses of that matrix (numpy, float64); where
    accuracy is measured, the dense solve is refined twice against long-double residuals,
    and per-stage references are evaluated in long double;
  * Python's decimal module (60 digits) for the saturated softmax.

What it checks, by section of docs/math.md:

  1  the stage blocks A, B, Hxx, Hxz, Hzz: the quadratic form assembled from them equals the
     Hessian; A and B against the complex step of the stage map
  2  the Hessian-vector product: the block recursion and the crate's per-layer form
     (layer.rs tangent / backward_tangent)
  3  the Riccati sweep (one factorisation, two right-hand sides, eps < 0 included) against a
     dense solve; the paper's interleaved block-tridiagonal system
  4  the structured stage as runtime/src/stage/factor.rs and sweep.rs compute it: Rt from the
     thin QR (Tm on the range, eps on the complement), J, the gain K, the S update with its
     Pi / eps term, Bunch-Kaufman L D L' (reimplemented here) with the half-solved gain
     Y = L^-1 P J, and the two-sweep solve; residual and bias-free stages, both loss heads
  5  Gauss-Newton: the Riccati form (adjoint terms dropped), the Woodbury form, the Gram matrix
     stage by stage (stage/gram.rs), the loss-Hessian factors C, the PSD part of an
     indefinite block; the accuracy of both forms without refinement in f64 and f32
  6  loss gradients and Hessians (MSE, softmax cross-entropy, an elementwise loss);
     cancellation-free softmax cross-entropy at saturated logits
  7  accuracy of elimination orders: this script's numpy implementations of the generic,
     crate (structured), paired and delayed-pivot sweeps in f64 and f32, and of the
     crate's refinement rule (measurements of these implementations, not of the crate)
  8  log-determinant and inertia from the pivots of every order, selected inversion in the
     dense and the structured variables, the Woodbury diagonal, the trace as the derivative
     of the log-determinant, predictive covariance, and the Laplace evidence of a linear
     model against its exact value
"""

import sys
from decimal import Decimal, getcontext

import numpy as np

FAILS = []


def report(sec, what, value, tol=None):
    """Prints one check; with a tolerance, records a failure when value > tol."""
    ok = tol is None or value <= tol
    mark = "" if tol is None else ("  ok" if ok else "  FAIL (tol %.0e)" % tol)
    print("[%s] %s: %.1e%s" % (sec, what, value, mark))
    if not ok:
        FAILS.append("%s %s" % (sec, what))


def rel(a, b):
    return np.linalg.norm(np.asarray(a) - np.asarray(b)) / max(np.linalg.norm(b), 1e-300)


def vecf(m):
    """Column-major vectorisation: an O x B activation matrix -> sample-major vector."""
    return np.asarray(m).reshape(-1, order="F")


def unvecf(v, rows):
    return np.asarray(v).reshape((rows, -1), order="F")


# ---------------------------------------------------------------------------------------
# Networks in the crate's conventions
# ---------------------------------------------------------------------------------------


class Layer:
    def __init__(self, i, o, act="tanh", bias=True, res=False):
        assert not res or i == o
        self.I, self.O, self.act, self.bias, self.res = i, o, act, bias, res
        self.I1 = i + (1 if bias else 0)
        self.p = o * self.I1

    def unpack(self, th):
        """Flat layout of layer.rs: W row-major (W[k][i] at k*I+i), then b."""
        W = th[: self.O * self.I].reshape(self.O, self.I)
        b = th[self.O * self.I : self.p] if self.bias else np.zeros(self.O, dtype=th.dtype)
        return W, b

    def unit_rows(self, th):
        """The stage block of a flat vector as the O x I1 matrix [W, b] (sweep.rs unit_rows)."""
        W, b = self.unpack(th)
        return np.hstack([W, b[:, None]]) if self.bias else W.copy()

    def flat_from_unit_rows(self, G):
        out = G[:, : self.I].reshape(-1)
        if self.bias:
            out = np.concatenate([out, G[:, self.I]])
        return out

    def vec_perm(self):
        """P with P @ flat = vec_F(unit rows) (index i*O + k), the ordering of Tm's kron."""
        P = np.zeros((self.p, self.p))
        for k in range(self.O):
            for i in range(self.I1):
                f = k * self.I + i if i < self.I else self.O * self.I + k
                P[i * self.O + k, f] = 1.0
        return P


def act_d2(name, u):
    if name == "tanh":
        t = np.tanh(u)
        d1 = 1 - t * t
        return t, d1, -2 * t * d1
    if name == "id":
        return u, np.ones_like(u), np.zeros_like(u)
    raise ValueError(name)


class Net:
    def __init__(self, layers, loss, B, seed, gain=1.2, target_scale=1.0):
        self.layers, self.loss, self.B = layers, loss, B
        r = np.random.default_rng(seed)
        self.offs = np.cumsum([0] + [l.p for l in layers])
        self.N = int(self.offs[-1])
        th = []
        for l in layers:
            W = r.uniform(-1, 1, (l.O, l.I)) * gain * np.sqrt(3.0 / l.I)
            b = r.normal(0, 0.5, l.O)
            th.append(W.reshape(-1))
            if l.bias:
                th.append(b)
        self.theta = np.concatenate(th)
        self.X = r.normal(0, 1, (layers[0].I, B))
        out = layers[-1].O
        if loss == "mse":
            self.T = r.normal(0, target_scale, (out, B))
        else:
            self.T = r.integers(0, out, B)

    def blk(self, th, l):
        return th[self.offs[l] : self.offs[l + 1]]

    # ----- forward, loss, gradient (generic dtype: complex for the complex step) -----
    def forward(self, th, X=None):
        z = self.X if X is None else X
        rec = []
        for l, L in enumerate(self.layers):
            W, b = L.unpack(self.blk(th, l))
            u = W @ z + b[:, None]
            f, d1, d2 = act_d2(L.act, u)
            out = f + z if L.res else f
            rec.append(dict(z=z, u=u, s1=d1, s2=d2, W=W))
            z = out
        return z, rec

    def loss_grad(self, u):
        """Loss value, dl/du (O x B) and the per-sample Hessian blocks Hl_n."""
        B = self.B
        if self.loss == "mse":
            e = u - self.T
            return (e * e).sum() / (2 * B), e / B, [np.eye(u.shape[0]) / B] * B
        val, g, hl = 0, np.zeros_like(u), []
        for n in range(B):
            p, lval = softmax_ce_stable(u[:, n], self.T[n])
            val = val + lval
            g[:, n] = p / B
            g[self.T[n], n] = -softmax_ce_rest(u[:, n], self.T[n]) / B
            hl.append(softmax_hess_stable(u[:, n]) / B)
        return val / B, g, hl

    def gradient(self, th):
        z, rec = self.forward(th)
        val, beta, _ = self.loss_grad(z)
        grad = []
        for l in reversed(range(len(self.layers))):
            L, r = self.layers[l], rec[l]
            delta = beta * r["s1"]
            gW = delta @ r["z"].T
            parts = [gW.reshape(-1)] + ([delta.sum(axis=1)] if L.bias else [])
            grad.insert(0, np.concatenate(parts))
            nb = r["W"].T @ delta
            beta = nb + beta if L.res else nb
        return val, np.concatenate(grad)

    def betas(self, th):
        """Adjoint beta_l of every stage output (O x B), beta_L = dl/du."""
        z, rec = self.forward(th)
        _, beta, hl = self.loss_grad(z)
        out = [None] * len(self.layers)
        for l in reversed(range(len(self.layers))):
            out[l] = beta
            L, r = self.layers[l], rec[l]
            nb = r["W"].T @ (beta * r["s1"])
            beta = nb + beta if L.res else nb
        return rec, out, hl, z


def complex_step_hessian(net):
    h = 1e-30
    H = np.zeros((net.N, net.N))
    for j in range(net.N):
        th = net.theta.astype(complex)
        th[j] += 1j * h
        H[:, j] = net.gradient(th)[1].imag / h
    return H


def complex_step_jacobian(net, X=None):
    """d vec_F(u) / d theta: network outputs, sample-major."""
    h = 1e-30
    u0, _ = net.forward(net.theta, X)
    J = np.zeros((u0.size, net.N))
    for j in range(net.N):
        th = net.theta.astype(complex)
        th[j] += 1j * h
        J[:, j] = vecf(net.forward(th, X)[0]).imag / h
    return J


# ---------------------------------------------------------------------------------------
# Softmax cross-entropy without cancellation (section 6)
# ---------------------------------------------------------------------------------------


def softmax_ce_stable(u, t):
    """p = softmax(u) and the loss: log1p(sum_{j != t} exp(u_j - u_t)) when u_t is the largest
    logit, else m + log(sum exp(u_j - m)) - u_t (no cancellation: the result is >= log 2)."""
    m = np.max(u.real)
    e = np.exp(u - m)
    p = e / e.sum()
    if u[t].real >= m:
        return p, np.log1p(np.exp(np.delete(u, t) - u[t]).sum())
    return p, m + np.log(e.sum()) - u[t]


def softmax_ce_rest(u, i):
    """sum_{j != i} p_j, summed directly (no 1 - p_i)."""
    m = np.max(u.real)
    e = np.exp(u - m)
    return np.delete(e, i).sum() / e.sum()


def softmax_hess_stable(u):
    """diag(p) - p p' with the diagonal as p_i * sum_{j != i} p_j."""
    m = np.max(u.real)
    e = np.exp(u - m)
    p = e / e.sum()
    H = -np.outer(p, p)
    for i in range(len(u)):
        H[i, i] = p[i] * softmax_ce_rest(u, i)
    return H


def softmax_hess_apply_stable(u, v):
    """(diag(p) - p p') v as p_i * sum_{j != i} p_j (v_i - v_j)."""
    m = np.max(u)
    e = np.exp(u - m)
    p = e / e.sum()
    return np.array([p[i] * sum(p[j] * (v[i] - v[j]) for j in range(len(u)) if j != i) for i in range(len(u))])


# ---------------------------------------------------------------------------------------
# Dense per-stage blocks (section 1) and the generic Riccati sweep (section 3)
# ---------------------------------------------------------------------------------------


def stage_blocks(L, r, beta, gn=False):
    """A (BO x BI), Bm (BO x p), Hxx (p x p), Hxz (p x BI), Hzz (BI x BI), flat parameter
    layout, sample-major activations (the StageView::dense_blocks formulas)."""
    I, O, B = L.I, L.O, r["z"].shape[1]
    W, s1 = r["W"], r["s1"]
    c = np.zeros_like(beta) if gn else beta * r["s2"]
    d = np.zeros_like(beta) if gn else beta * s1
    zt = np.vstack([r["z"], np.ones((1, B))]) if L.bias else r["z"]
    pidx = lambda k, i: k * I + i if i < I else O * I + k
    A = np.zeros((B * O, B * I))
    Bm = np.zeros((B * O, L.p))
    Hxx = np.zeros((L.p, L.p))
    Hxz = np.zeros((L.p, B * I))
    Hzz = np.zeros((B * I, B * I))
    for n in range(B):
        for k in range(O):
            row = n * O + k
            A[row, n * I : n * I + I] = s1[k, n] * W[k]
            if L.res:
                A[row, n * I + k] += 1
            for i in range(L.I1):
                Bm[row, pidx(k, i)] = s1[k, n] * zt[i, n]
                for ip in range(L.I1):
                    Hxx[pidx(k, i), pidx(k, ip)] += c[k, n] * zt[i, n] * zt[ip, n]
                for iz in range(I):
                    Hxz[pidx(k, i), n * I + iz] += c[k, n] * zt[i, n] * W[k, iz] + (d[k, n] if i == iz else 0)
            Hzz[n * I : n * I + I, n * I : n * I + I] += c[k, n] * np.outer(W[k], W[k])
    return dict(A=A, B=Bm, Hxx=Hxx, Hxz=Hxz, Hzz=Hzz)


def all_blocks(net, gn=False):
    rec, betas, hl, u = net.betas(net.theta)
    bl = [stage_blocks(L, rec[l], betas[l], gn) for l, L in enumerate(net.layers)]
    Hl = np.zeros((u.size, u.size))
    for n, h in enumerate(hl):
        o = u.shape[0]
        Hl[n * o : n * o + o, n * o : n * o + o] = h
    return bl, Hl, rec, betas


def hessian_from_blocks(net, bl, Hl):
    """sum_l [Hxx + Hxz T + T'Hxz' + T'Hzz T] + T_L' Hl T_L with T_l: v -> y_l."""
    N = net.N
    H = np.zeros((N, N))
    T = None
    for l, b in enumerate(bl):
        E = np.zeros((b["B"].shape[1], N))
        E[:, net.offs[l] : net.offs[l + 1]] = np.eye(b["B"].shape[1])
        H += E.T @ b["Hxx"] @ E
        if T is not None:
            X = E.T @ b["Hxz"] @ T
            H += X + X.T + T.T @ b["Hzz"] @ T
            T = b["A"] @ T + b["B"] @ E
        else:
            T = b["B"] @ E
    return H + T.T @ Hl @ T


def riccati_factor(bl, Hl, eps):
    """Section 3: S_L = Hl; Rt, N, K per stage; S_{l-1} = Hzz + A'SA - N'K."""
    S = Hl
    fac = [None] * len(bl)
    for l in reversed(range(len(bl))):
        b = bl[l]
        Rt = b["Hxx"] + eps * np.eye(len(b["Hxx"]), dtype=S.dtype) + b["B"].T @ S @ b["B"]
        Nm = b["Hxz"] + b["B"].T @ S @ b["A"]
        K = np.linalg.solve(Rt, Nm)
        fac[l] = dict(Rt=Rt, N=Nm, K=K, S=S)
        S = b["Hzz"] + b["A"].T @ S @ b["A"] - Nm.T @ K
    return fac


def riccati_solve(net, bl, fac, g):
    dt = bl[-1]["B"].dtype
    g = g.astype(dt)
    s = np.zeros(bl[-1]["B"].shape[0], dtype=dt)
    ks = [None] * len(bl)
    for l in reversed(range(len(bl))):
        b, f = bl[l], fac[l]
        ks[l] = np.linalg.solve(f["Rt"], net.blk(g, l) - b["B"].T @ s)
        s = b["A"].T @ s + f["N"].T @ ks[l]
    x, y = np.zeros(net.N, dtype=dt), None
    for l, b in enumerate(bl):
        xl = ks[l] - (fac[l]["K"] @ y if y is not None else 0)
        x[net.offs[l] : net.offs[l + 1]] = xl
        y = b["B"] @ xl + (b["A"] @ y if y is not None else 0)
    return x


def hvp_blocks(net, bl, Hl, v):
    """Section 2 with the blocks: forward tangent, then the backward pass."""
    ys, y = [], None
    for l, b in enumerate(bl):
        ys.append(y)
        y = b["B"] @ net.blk(v, l) + (b["A"] @ y if y is not None else 0)
    r = Hl @ y
    out = np.zeros(net.N, dtype=v.dtype)
    for l in reversed(range(len(bl))):
        b, vl, yp = bl[l], net.blk(v, l), ys[l]
        hv = b["B"].T @ r + b["Hxx"] @ vl
        if yp is not None:
            hv += b["Hxz"] @ yp
            r = b["A"].T @ r + b["Hzz"] @ yp + b["Hxz"].T @ vl
        out[net.offs[l] : net.offs[l + 1]] = hv
    return out


def hvp_layers(net, v):
    """Section 2 in the crate's per-layer variables (layer.rs tangent, backward_tangent)."""
    rec, betas, hl, u = net.betas(net.theta)
    y, tape = None, []
    for l, L in enumerate(net.layers):
        r = rec[l]
        G = L.unit_rows(net.blk(v, l))
        zt = np.vstack([r["z"], np.ones((1, net.B))]) if L.bias else r["z"]
        du = G @ zt + (r["W"] @ y if y is not None else 0)
        yo = r["s1"] * du + (y if (L.res and y is not None) else 0)
        tape.append((y, du))
        y = yo
    rr = np.column_stack([hl[n] @ y[:, n] for n in range(net.B)])
    out = np.zeros(net.N)
    for l in reversed(range(len(net.layers))):
        L, r, (yin, du) = net.layers[l], rec[l], tape[l]
        beta = betas[l]
        delta = beta * r["s1"]
        ddelta = rr * r["s1"] + beta * r["s2"] * du
        zt = np.vstack([r["z"], np.ones((1, net.B))]) if L.bias else r["z"]
        Hv = ddelta @ zt.T
        if yin is not None:
            Hv[:, : L.I] += delta @ yin.T
        out[net.offs[l] : net.offs[l + 1]] = L.flat_from_unit_rows(Hv)
        V = L.unit_rows(net.blk(v, l))[:, : L.I]
        rin = r["W"].T @ ddelta + V.T @ delta
        rr = rin + rr if L.res else rin
    return out


def paper_system(net, bl, Hl, eps):
    """The paper's form: unknowns (x_l, y_l, r_l) per stage, interleaved."""
    sizes = [(b["B"].shape[1], b["B"].shape[0]) for b in bl]
    offs, o = [], 0
    for p, a in sizes:
        offs.append((o, o + p, o + p + a))
        o += p + 2 * a
    K = np.zeros((o, o))
    for l, b in enumerate(bl):
        xo, yo, ro = offs[l]
        p, a = sizes[l]
        K[xo : xo + p, xo : xo + p] = b["Hxx"] + eps * np.eye(p)
        K[xo : xo + p, ro : ro + a] = b["B"].T
        K[yo : yo + a, yo : yo + a] = np.eye(a)
        K[yo : yo + a, xo : xo + p] = -b["B"]
        K[ro : ro + a, ro : ro + a] = -np.eye(a)
        if l > 0:
            pyo = offs[l - 1][1]
            pa = sizes[l - 1][1]
            K[xo : xo + p, pyo : pyo + pa] = b["Hxz"]
            K[yo : yo + a, pyo : pyo + pa] = -b["A"]
            pro = offs[l - 1][2]
            K[pro : pro + pa, ro : ro + a] = b["A"].T
            K[pro : pro + pa, pyo : pyo + pa] = b["Hzz"]
            K[pro : pro + pa, xo : xo + p] = b["Hxz"].T
    xo, yo, ro = offs[-1]
    a = sizes[-1][1]
    K[ro : ro + a, yo : yo + a] = Hl
    return K, offs, sizes


# ---------------------------------------------------------------------------------------
# Bunch-Kaufman L D L' (the xSYTF2 pivoting of runtime/src/linalg/ldlt.rs)
# ---------------------------------------------------------------------------------------


def bunch_kaufman(A):
    """P A P' = L D L' with P a gather (A[perm][:, perm]); returns perm, L, D, blocks."""
    n = len(A)
    A = np.array(A, copy=True)
    dt = A.dtype
    perm = np.arange(n)
    L = np.eye(n, dtype=dt)
    D = np.zeros((n, n), dtype=dt)
    blocks = []
    alpha = (1 + np.sqrt(17.0)) / 8
    k = 0

    def swap(i, j):
        A[[i, j], :] = A[[j, i], :]
        A[:, [i, j]] = A[:, [j, i]]
        L[[i, j], :k] = L[[j, i], :k]
        perm[[i, j]] = perm[[j, i]]

    while k < n:
        absakk = abs(A[k, k])
        col = np.abs(A[k + 1 :, k])
        colmax = col.max() if len(col) else 0.0
        if absakk >= alpha * colmax:
            kp, step = k, 1
        else:
            imax = k + 1 + int(np.argmax(col))
            rowvals = np.abs(np.concatenate([A[imax, k:imax], A[imax + 1 :, imax]]))
            rowmax = rowvals.max()
            if absakk >= alpha * colmax * (colmax / rowmax):
                kp, step = k, 1
            elif abs(A[imax, imax]) >= alpha * rowmax:
                kp, step = imax, 1
            else:
                kp, step = imax, 2
        kk = k + step - 1
        if kp != kk:
            swap(kk, kp)
        E = A[k : k + step, k : k + step].copy()
        C = A[k + step :, k : k + step]
        Einv = np.linalg.inv(E)
        L[k + step :, k : k + step] = C @ Einv
        A[k + step :, k + step :] -= C @ Einv @ C.T
        D[k : k + step, k : k + step] = E
        blocks.append(E)
        k += step
    return perm, L, D, blocks


def inertia_of_blocks(blocks):
    """Sylvester: signs of D's 1x1 and 2x2 blocks (2x2 from determinant and trace)."""
    neg = pos = zero = 0
    for E in blocks:
        if len(E) == 1:
            v = E[0, 0]
            neg, pos, zero = neg + (v < 0), pos + (v > 0), zero + (v == 0)
        else:
            det = E[0, 0] * E[1, 1] - E[1, 0] ** 2
            if det < 0:
                neg, pos = neg + 1, pos + 1
            elif E[0, 0] + E[1, 1] > 0:
                pos += 2
            else:
                neg += 2
    return np.array([neg, zero, pos])


def logabsdet_blocks(blocks):
    sgn, la = 1.0, 0.0
    for E in blocks:
        s, v = np.linalg.slogdet(E.astype(np.float64))
        sgn, la = sgn * s, la + v
    return sgn, la


def lsolve(L, b):
    """Unit lower triangular solve, column by column."""
    x = np.array(b, copy=True)
    for i in range(len(L)):
        x[i] -= L[i, :i] @ x[:i]
    return x


def ltsolve(L, b):
    x = np.array(b, copy=True)
    for i in reversed(range(len(L))):
        x[i] -= L[i + 1 :, i] @ x[i + 1 :]
    return x


# ---------------------------------------------------------------------------------------
# The structured stage of runtime/src/stage/{factor,sweep}.rs (section 4)
# ---------------------------------------------------------------------------------------


def thin_qr(Zt):
    """Zt = Qz Rz, Qz (I1 x R) orthonormal, R = min(I1, B)."""
    Q, Rr = np.linalg.qr(Zt, mode="reduced")
    return Q, Rr


def structured_stage_data(L, r, beta, gn, dtype):
    I, O, B = L.I, L.O, r["z"].shape[1]
    cast = lambda a: np.asarray(a, dtype=np.float64).astype(dtype)
    s1 = cast(r["s1"])
    c = np.zeros_like(s1) if gn else cast(beta * r["s2"])
    d = np.zeros_like(s1) if gn else cast(beta * r["s1"])
    zt = np.vstack([r["z"], np.ones((1, B))]) if L.bias else r["z"]
    qz, rz = thin_qr(cast(zt))
    return dict(L=L, W=cast(r["W"]), s1=s1, c=c, d=d, qz=qz, rz=rz, I=I, O=O, B=B, R=qz.shape[1])


def structured_factor(stages, Hl, eps, keep_dense=False):
    """factor_stage for every stage, last first. Returns the inertia and log|det| of
    H + eps I from the stage pivots (Tm's D blocks and eps on each complement)."""
    dt = stages[0]["W"].dtype
    eps = dt.type(eps)
    S = Hl.astype(dt)
    inertia = np.zeros(3, dtype=int)
    sgn, logabs = 1.0, 0.0
    for l in reversed(range(len(stages))):
        st = stages[l]
        L, I, O, B, R = st["L"], st["I"], st["O"], st["B"], st["R"]
        st["S"] = S
        Dm, Cm = np.diag(vecf(st["s1"])), np.diag(vecf(st["c"]))
        RzK = np.kron(st["rz"], np.eye(O, dtype=dt))  # (Rz kron I_O): RO x BO
        M = Cm + Dm @ S @ Dm
        Tm = eps * np.eye(R * O, dtype=dt) + RzK @ M @ RzK.T
        st["Tm"] = Tm
        complement = O * L.I1 - R * O
        perm, Lf, Df, blocks = bunch_kaufman(Tm)
        st.update(perm=perm, Lf=Lf, Df=Df, blocks=blocks, complement=complement)
        ine = inertia_of_blocks(blocks)
        s_, la = logabsdet_blocks(blocks)
        if complement:
            ine += np.array([eps < 0, eps == 0, eps > 0]) * complement
            s_ *= np.sign(eps) ** complement
            la += complement * np.log(abs(float(eps)))
        inertia += ine
        sgn, logabs = sgn * s_, logabs + la
        if l == 0:
            break
        Wb = np.kron(np.eye(B, dtype=dt), st["W"])  # blockdiag_n(W): BO x BI
        A = Dm @ Wb + (np.eye(B * O, dtype=dt) if L.res else 0)
        qzz = st["qz"][:I]
        # J = (Rz kron I)(C Wb + D S A) + [Qz_z d'] terms (factor.rs builds J')
        Jm = RzK @ (Cm @ Wb + Dm @ S @ A)
        for n in range(B):
            for iz in range(I):
                Jm[:, n * I + iz] += np.kron(qzz[iz], st["d"][:, n])
        st["J"] = Jm
        Pi = np.eye(I, dtype=dt) - qzz @ qzz.T if complement else np.zeros((I, I), dtype=dt)
        dgram = st["d"].T @ st["d"]
        Hzz = np.zeros((B * I, B * I), dtype=dt)
        for n in range(B):
            Hzz[n * I : n * I + I, n * I : n * I + I] = st["W"].T @ np.diag(st["c"][:, n]) @ st["W"]
        Y = lsolve(Lf, Jm[perm])  # Y = L^{-1} P J
        st["Y"] = Y
        Dinv = np.linalg.inv(Df)
        Sprev = Hzz + A.T @ S @ A - np.kron(dgram, Pi) / eps - Y.T @ Dinv @ Y
        st["Pi"], st["A"] = Pi, A
        S = (Sprev + Sprev.T) / 2
    return inertia, sgn, logabs


def tm_solve(st, rhs):
    """Tm^{-1} rhs = P' L'^{-1} D^{-1} L^{-1} P rhs."""
    x = lsolve(st["Lf"], rhs[st["perm"]])
    x = ltsolve(st["Lf"], np.linalg.solve(st["Df"], x))
    out = np.empty_like(x)
    out[st["perm"]] = x
    return out


def tm_finish(st, xi0):
    x = ltsolve(st["Lf"], np.linalg.solve(st["Df"], xi0))
    out = np.empty_like(x)
    out[st["perm"]] = x
    return out


def structured_solve(net, stages, g, eps):
    """solve_backward for every stage (last first), then solve_forward (first first)."""
    dt = stages[0]["W"].dtype
    eps = dt.type(eps)
    g = g.astype(dt)
    s_out = np.zeros((stages[-1]["O"], stages[-1]["B"]), dtype=dt)
    for l in reversed(range(len(stages))):
        st = stages[l]
        L, I, O, B, R = st["L"], st["I"], st["O"], st["B"], st["R"]
        G = L.unit_rows(net.blk(g, l))
        gq = G @ st["qz"]
        xi = gq - (st["s1"] * s_out) @ st["rz"].T
        st["xi0"] = lsolve(st["Lf"], vecf(xi)[st["perm"]])
        st["gq"] = gq
        Xi = unvecf(tm_finish(st, st["xi0"]), O)
        e0 = Xi @ st["rz"]
        q = unvecf(st["S"] @ vecf(st["s1"] * e0), O) + s_out
        t = st["s1"] * q + st["c"] * e0
        s_in = st["W"].T @ t
        coef = Xi.T @ st["d"]
        if st["complement"]:
            coef -= gq.T @ st["d"] / eps
            s_in += G[:, :I].T @ st["d"] / eps
        s_in += st["qz"][:I] @ coef
        if L.res:
            s_in += q
        s_out = s_in
    x = np.zeros(net.N, dtype=dt)
    y = None
    for l, st in enumerate(stages):
        L, I, O, B, R = st["L"], st["I"], st["O"], st["B"], st["R"]
        G = L.unit_rows(net.blk(g, l))
        xi0 = st["xi0"].copy()
        e = np.zeros((O, B), dtype=dt)
        if y is not None:
            xi0 -= st["Y"] @ vecf(y)
            e = st["W"] @ y
        Xi = unvecf(tm_finish(st, xi0), O)
        qz = st["qz"]
        if st["complement"]:
            u = Xi - st["gq"] / eps
            Gh = G.copy()
            if y is not None:
                u += st["d"] @ (y.T @ qz[:I]) / eps
                Gh[:, :I] -= st["d"] @ y.T
            X = Gh / eps + u @ qz.T
        else:
            X = Xi @ qz.T
        x[net.offs[l] : net.offs[l + 1]] = L.flat_from_unit_rows(X)
        e = e + Xi @ st["rz"]
        yo = st["s1"] * e
        if L.res and y is not None:
            yo = yo + y
        y = yo
    return x


def make_stages(net, gn=False, dtype=np.float64):
    rec, betas, hl, u = net.betas(net.theta)
    stages = [structured_stage_data(L, rec[l], betas[l], gn, dtype) for l, L in enumerate(net.layers)]
    Hl = np.zeros((u.size, u.size))
    o = u.shape[0]
    for n, h in enumerate(hl):
        Hl[n * o : n * o + o, n * o : n * o + o] = h
    return stages, Hl


def apply_blocks(net, bl, Hl, eps, v):
    return hvp_blocks(net, bl, Hl, v) + eps * v


# ---------------------------------------------------------------------------------------
# Section 7: paired and delayed-pivot elimination orders (generic dense blocks)
# ---------------------------------------------------------------------------------------


def range_complement(net, l, rec, dtype):
    """Ur, Uc (flat coordinates): Pflat' (Qz kron I_O) and Pflat' (Qc kron I_O)."""
    L = net.layers[l]
    zt = np.vstack([rec[l]["z"], np.ones((1, net.B))]) if L.bias else rec[l]["z"]
    Qfull, _ = np.linalg.qr(zt, mode="complete")
    R = min(L.I1, net.B)
    P = L.vec_perm()
    Ur = P.T @ np.kron(Qfull[:, :R], np.eye(L.O))
    Uc = P.T @ np.kron(Qfull[:, R:], np.eye(L.O))
    return Ur.astype(dtype), Uc.astype(dtype)


def carried_sweep(net, bl, Hl, eps, g, rec, dtype, tau=None, generic_complement=False):
    """Backward elimination with variables carried to the previous stage, then forward.

    tau None: the paired order (carry eta_l = E_l' c_l only). tau > 0: also delay every
    eigen-pivot lambda_j of Q with |lambda_j| < tau |N~_j| (row norm of V'N).
    Returns x, max|S| over the sweep, most variables carried, sum log|pivot|, inertia."""
    cast = lambda a: np.asarray(a, dtype=np.float64).astype(dtype)
    eps = dtype(eps)
    g = cast(g)
    S = cast(Hl)
    s = np.zeros(len(S), dtype=dtype)
    car = None  # (Qc, Gc, tc): quadratic, coupling to this stage's output, linear
    recs = [None] * len(bl)
    maxS, most = np.abs(S).max(), 0
    logabs, inertia = 0.0, np.zeros(3, dtype=int)

    def add_pivots(vals):
        nonlocal logabs, inertia
        vals = np.asarray(vals, dtype=np.float64)
        logabs += np.log(np.abs(vals)).sum()
        inertia += np.array([(vals < 0).sum(), (vals == 0).sum(), (vals > 0).sum()])

    for l in reversed(range(len(bl))):
        b = {k: cast(v) for k, v in bl[l].items()}
        Ur, Uc = range_complement(net, l, rec, dtype)
        gl = net.blk(g, l)
        Br = b["B"] @ Ur
        Qrr = Ur.T @ (b["Hxx"] + eps * np.eye(len(b["Hxx"]), dtype=dtype)) @ Ur + Br.T @ S @ Br
        Nr = Ur.T @ b["Hxz"] + Br.T @ S @ b["A"]
        qr = Br.T @ s - Ur.T @ gl
        if car is not None:
            Qc, Gc, tc = car
            GB = Gc @ Br
            Q = np.block([[Qrr, GB.T], [GB, Qc]])
            Nm = np.vstack([Nr, Gc @ b["A"]])
            q = np.concatenate([qr, tc])
        else:
            Q, Nm, q = Qrr, Nr, qr
        nr = Qrr.shape[0]
        # this stage's complement: N_c = Uc' Hxz = E Gamma; the rest is decoupled
        gc = Uc.T @ gl
        Nc = Uc.T @ b["Hxz"]
        if Uc.shape[1] and l > 0:
            Ue, sv, Vt = np.linalg.svd(Nc, full_matrices=True)
            rk = int((sv > sv.max() * 1e-12 * max(Nc.shape)).sum()) if sv.size else 0
            E, Eperp = Ue[:, :rk], Ue[:, rk:]
            Gam = sv[:rk, None] * Vt[:rk]
        else:
            E, Eperp = np.zeros((Uc.shape[1], 0), dtype=dtype), np.eye(Uc.shape[1], dtype=dtype)
            Gam = np.zeros((0, Nc.shape[1]), dtype=dtype)
        w = Eperp.T @ gc / eps
        add_pivots([eps] * Eperp.shape[1])
        if l == 0:
            u = -np.linalg.solve(Q, q)
            add_pivots(np.linalg.eigvalsh(Q.astype(np.float64)))
            recs[l] = dict(u=u, nr=nr, Ur=Ur, Uc=Uc, E=E, Eperp=Eperp, w=w, eta=None)
            break
        eta_t = -E.T @ gc
        if tau is None:
            K = np.linalg.solve(Q, Nm)
            k = -np.linalg.solve(Q, q)
            add_pivots(np.linalg.eigvalsh(Q.astype(np.float64)))
            Snew = b["Hzz"] + b["A"].T @ S @ b["A"] - Nm.T @ K
            s = b["A"].T @ s + Nm.T @ k
            recs[l] = dict(kind="paired", K=K, k=k, nr=nr, Ur=Ur, Uc=Uc, E=E, Eperp=Eperp, w=w)
            car = (eps * np.eye(E.shape[1], dtype=dtype), Gam, eta_t)
        else:
            lam, V = np.linalg.eigh(Q)
            Nt, qt = V.T @ Nm, V.T @ q
            keep = np.abs(lam) >= tau * np.linalg.norm(Nt, axis=1)
            add_pivots(lam[keep])
            Snew = b["Hzz"] + b["A"].T @ S @ b["A"] - Nt[keep].T @ (Nt[keep] / lam[keep, None])
            s = b["A"].T @ s - Nt[keep].T @ (qt[keep] / lam[keep])
            C = ~keep
            nC = int(C.sum())
            Qn = np.zeros((nC + E.shape[1],) * 2, dtype=dtype)
            Qn[:nC, :nC] = np.diag(lam[C])
            Qn[nC:, nC:] = eps * np.eye(E.shape[1], dtype=dtype)
            car = (Qn, np.vstack([Nt[C], Gam]), np.concatenate([qt[C], eta_t]))
            recs[l] = dict(kind="delayed", V=V, lam=lam, Nt=Nt, qt=qt, keep=keep, nC=nC,
                           nr=nr, Ur=Ur, Uc=Uc, E=E, Eperp=Eperp, w=w)
        S = (Snew + Snew.T) / 2
        maxS = max(maxS, np.abs(S).max())
        most = max(most, car[0].shape[0])
    # forward
    x = np.zeros(net.N, dtype=dtype)
    u = recs[0]["u"]
    y = None
    carried_in = None  # values of this stage's carried set [u~_C; eta_l], from stage l-1
    for l in range(len(bl)):
        rc = recs[l]
        b = {k: cast(v) for k, v in bl[l].items()}
        if l == 0:
            ul = u
        elif rc["kind"] == "paired":
            ul = -rc["K"] @ y + rc["k"]
        else:
            ut = np.zeros(len(rc["lam"]), dtype=dtype)
            kp = rc["keep"]
            ut[kp] = -(rc["Nt"][kp] @ y + rc["qt"][kp]) / rc["lam"][kp]
            ut[~kp] = carried_in[: rc["nC"]]
            ul = rc["V"] @ ut
        if l > 0:
            eta = carried_in[-rc["E"].shape[1] :] if rc["E"].shape[1] else np.zeros(0, dtype=dtype)
        else:
            eta = np.zeros(0, dtype=dtype)
        rho, carried_next = ul[: rc["nr"]], ul[rc["nr"] :]
        cvec = rc["E"] @ eta + rc["Eperp"] @ rc["w"]
        xl = rc["Ur"] @ rho + rc["Uc"] @ cvec
        x[net.offs[l] : net.offs[l + 1]] = xl
        y = b["B"] @ xl + (b["A"] @ y if y is not None else 0)
        carried_in = carried_next
    return x, maxS, most, logabs, inertia


def refine_like_crate(net, bl, Hl, stages, g, eps, x, max_steps):
    """solve_refined's loop: correct with the exact (H + eps I) x from the stored blocks while
    the residual at least halves; undo a correction that made it grow."""
    nrm = lambda v: float(np.linalg.norm(v.astype(np.float64)))
    bn = nrm(g)
    res_old, corr = float("inf"), None
    for step in range(max_steps + 1):
        r = g - apply_blocks(net, bl, Hl, eps, x)
        res = nrm(r) / bn
        if step > 0 and res > 0.5 * res_old:
            if res > res_old:
                x = x - corr
            return x
        res_old = res
        if step == max_steps:
            break
        corr = structured_solve(net, stages, r, eps)
        x = x + corr
    return x


def structured_max_S(stages):
    return max(np.abs(st["S"]).max() for st in stages)


def generic_selinv(net, bl, fac):
    """Sigma_l = Rt^-1 + K P K', P_l = F P F' + B Rt^-1 B', F = A - B K, P_0 = 0."""
    out, P = [], None
    for l, b in enumerate(bl):
        f = fac[l]
        Rinv = np.linalg.inv(f["Rt"])
        out.append(Rinv + (f["K"] @ P @ f["K"].T if P is not None else 0))
        BRB = b["B"] @ Rinv @ b["B"].T
        if P is None:
            P = BRB
        else:
            F = b["A"] - b["B"] @ f["K"]
            P = F @ P @ F.T + BRB
    return out


def structured_selinv(net, stages, eps):
    """The same recursion in the structured variables: Rt^-1 = Pflat'[(Qz kron I) Tm^-1 (Qz kron I)'
    + (Pi_c kron I)/eps] Pflat, K = Pflat'[(Qz kron I) Tm^-1 J + (Pi_c kron I) Dterm/eps],
    B Rt^-1 B' = D (Rz' kron I) Tm^-1 (Rz kron I) D, B K = D (Rz' kron I) Tm^-1 J.
    Returns the diagonal blocks and, separately, their diagonals with diag(Rt^-1) from
    the per-unit R x R blocks of Tm^-1 plus (1 - |Qz[i, :]|^2) / eps."""
    blocks, diags, P = [], [], None
    for l, st in enumerate(stages):
        L, O = st["L"], st["O"]
        Pf = L.vec_perm()
        n = len(st["Tm"])
        Tinv = np.column_stack([tm_solve(st, np.eye(n)[:, j]) for j in range(n)])
        QzK = np.kron(st["qz"], np.eye(O))
        Pic = np.eye(L.I1) - st["qz"] @ st["qz"].T
        Rinv = Pf.T @ (QzK @ Tinv @ QzK.T + np.kron(Pic, np.eye(O)) / eps) @ Pf
        dvec = np.zeros(L.p)
        for i in range(L.I1):
            for k in range(O):
                idx = [j * O + k for j in range(st["R"])]
                dvec[i * O + k] = st["qz"][i] @ Tinv[np.ix_(idx, idx)] @ st["qz"][i] + (1 - st["qz"][i] @ st["qz"][i]) / eps
        drt = Pf.T @ dvec
        Dm = np.diag(vecf(st["s1"]))
        RzK = np.kron(st["rz"], np.eye(O))
        BRB = Dm @ RzK.T @ Tinv @ RzK @ Dm
        if P is None:
            blocks.append(Rinv)
            diags.append(drt)
            P = BRB
            continue
        Dterm = np.zeros((L.p, st["B"] * L.I))
        for nn in range(st["B"]):
            for iz in range(L.I):
                Dterm[:, nn * L.I + iz] = np.kron(np.eye(L.I1)[iz], st["d"][:, nn])
        K = Pf.T @ (QzK @ Tinv @ st["J"] + np.kron(Pic, np.eye(O)) @ Dterm / eps)
        KPK = K @ P @ K.T
        blocks.append(Rinv + KPK)
        diags.append(drt + np.diag(KPK))
        F = st["A"] - Dm @ RzK.T @ Tinv @ st["J"]
        P = F @ P @ F.T + BRB
    return blocks, diags


def solve_ld(A, Bm):
    """Gaussian elimination with partial pivoting in long double (small dense references)."""
    A = np.array(A, dtype=np.longdouble)
    X = np.array(Bm, dtype=np.longdouble).reshape(len(A), -1)
    n = len(A)
    for k in range(n):
        piv = k + int(np.argmax(np.abs(A[k:, k])))
        A[[k, piv]], X[[k, piv]] = A[[piv, k]], X[[piv, k]]
        f = A[k + 1 :, k] / A[k, k]
        A[k + 1 :] -= np.outer(f, A[k])
        X[k + 1 :] -= np.outer(f, X[k])
    for k in reversed(range(n)):
        X[k] = (X[k] - A[k, k + 1 :] @ X[k + 1 :]) / A[k, k]
    return X


def accurate_dense_solve(K, g):
    """Dense LU solve with one refinement step against a long-double residual."""
    x = np.linalg.solve(K, g)
    for _ in range(2):
        r = g.astype(np.longdouble) - K.astype(np.longdouble) @ x.astype(np.longdouble)
        x = x + np.linalg.solve(K, r.astype(np.float64))
    return x


# ---------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------


def nets():
    mse1 = Net([Layer(3, 4), Layer(4, 4, res=True), Layer(4, 4, bias=False), Layer(4, 4, res=True),
                Layer(4, 2, act="id")], "mse", B=1, seed=1, target_scale=2.0)
    mse3 = Net([Layer(3, 4), Layer(4, 4, res=True), Layer(4, 4, bias=False), Layer(4, 4, res=True),
                Layer(4, 2, act="id")], "mse", B=3, seed=2, target_scale=2.0)
    ce2 = Net([Layer(3, 4), Layer(4, 4, res=True), Layer(4, 5), Layer(5, 3, act="id")], "ce", B=2, seed=3)
    return [("tanh/MSE batch 1", mse1), ("tanh/MSE batch 3", mse3), ("tanh/softmax-CE batch 2", ce2)]


def main():
    np.set_printoptions(precision=3)
    cases = nets()
    # ---- references
    refs = {}
    for name, net in cases:
        val, gr = net.gradient(net.theta)
        h = 1e-30
        cs = np.array([net.gradient(net.theta + 1j * h * np.eye(net.N)[j])[0].imag / h for j in range(net.N)])
        report("0", "%s (N = %d): back-propagated gradient vs complex step of the loss, rel" % (name, net.N),
               rel(gr, cs), 1e-13)
        H = complex_step_hessian(net)
        refs[name] = H
        ev = np.linalg.eigvalsh(H)
        print("[0] %s: Hessian eigenvalues in [%.2e, %.2e] (%d negative: indefinite), asymmetry %.1e"
              % (name, ev.min(), ev.max(), (ev < 0).sum(), rel(H, H.T)))

    # ---- section 1: blocks and the quadratic form; A and B against the complex step
    for name, net in cases:
        bl, Hl, rec, betas = all_blocks(net)
        Hb = hessian_from_blocks(net, bl, Hl)
        report("1", "%s: Hessian assembled from A, B, Hxx, Hxz, Hzz and Hl vs dense, rel" % name,
               rel(Hb, refs[name]), 1e-13)
    # A_l and B_l of one stage by the complex step of the stage map
    name, net = cases[1]
    rec, betas, hl, u = net.betas(net.theta)
    bl, Hl, _, _ = all_blocks(net)
    l = 3
    L = net.layers[l]
    z = rec[l]["z"]
    wb = net.blk(net.theta, l)

    def stage_out(zz, th):
        W, b = L.unpack(th)
        f = act_d2(L.act, W @ zz + b[:, None])[0]
        return f + zz if L.res else f

    Acs = np.column_stack([vecf(stage_out(z + 1e-30j * unvecf(np.eye(z.size)[j], L.I), wb.astype(complex))).imag / 1e-30
                           for j in range(z.size)])
    Bcs = np.column_stack([vecf(stage_out(z.astype(complex), wb + 1e-30j * np.eye(L.p)[j])).imag / 1e-30
                           for j in range(L.p)])
    report("1", "stage 4 (residual, batch 3): A and B vs complex step of the stage map, rel",
           max(rel(bl[l]["A"], Acs), rel(bl[l]["B"], Bcs)), 1e-14)

    # ---- section 2: HVP
    for name, net in cases:
        bl, Hl, _, _ = all_blocks(net)
        v = np.random.default_rng(7).normal(size=net.N)
        ref = refs[name] @ v
        report("2", "%s: block recursion H v vs dense, rel" % name, rel(hvp_blocks(net, bl, Hl, v), ref), 1e-13)
        report("2", "%s: per-layer form (layer.rs) H v vs dense, rel" % name, rel(hvp_layers(net, v), ref), 1e-13)

    # ---- section 3: Riccati sweep; factor/solve split; the paper's form
    for name, net in cases:
        bl, Hl, _, _ = all_blocks(net)
        H = refs[name]
        parts, worst = [], 0.0
        for eps in [1.0, 1e-2, -0.05]:
            fac = riccati_factor(bl, Hl, eps)
            cu = np.linalg.cond(H + eps * np.eye(net.N)) * 1.1e-16
            e = 0.0
            for seed in [11, 12]:  # two right-hand sides on one factorisation
                g = np.random.default_rng(seed).normal(size=net.N)
                x = riccati_solve(net, bl, fac, g)
                e = max(e, rel(x, accurate_dense_solve(H + eps * np.eye(net.N), g)))
            parts.append("eps %g: %.1e (cond*u64 %.0e)" % (eps, e, cu))
            if eps != 1e-2:  # at small eps the plain order loses digits: section 7
                worst = max(worst, e / max(cu, 1e-16))
        print("[3] %s: Riccati sweep vs dense solve, two right-hand sides per factorisation: %s"
              % (name, "; ".join(parts)))
        if worst > 100:
            FAILS.append("3 Riccati %s" % name)
    name, net = cases[1]
    bl, Hl, _, _ = all_blocks(net)
    for eps in [1.0, 1e-2]:
        Kp, offs, sizes = paper_system(net, bl, Hl, eps)
        g = np.random.default_rng(5).normal(size=net.N)
        rhs = np.zeros(len(Kp))
        for l, (xo, yo, ro) in enumerate(offs):
            rhs[xo : xo + sizes[l][0]] = net.blk(g, l)
        sol = np.linalg.solve(Kp, rhs)
        x = np.concatenate([sol[xo : xo + sizes[l][0]] for l, (xo, yo, ro) in enumerate(offs)])
        xd = np.linalg.solve(refs[name] + eps * np.eye(net.N), g)
        report("3", "%s: paper's interleaved (x, y, r) system, size %d, vs dense solve at eps %g, rel"
               % (name, len(Kp), eps), rel(x, xd), 1e-11)
    # block-tridiagonal: no entry couples stages more than one apart
    far = 0.0
    for a in range(len(offs)):
        for bb in range(len(offs)):
            if abs(a - bb) > 1:
                ea = offs[a][0], offs[a][2] + sizes[a][1]
                eb = offs[bb][0], offs[bb][2] + sizes[bb][1]
                far = max(far, np.abs(Kp[ea[0] : ea[1], eb[0] : eb[1]]).max())
    report("3", "paper's system: largest entry coupling stages two or more apart", far, 0.0)

    # ---- section 4: the structured stage
    # Stage-local checks: every stage's structured quantities against the dense formulas of
    # section 3 evaluated with the same S (the value Hessian the structured sweep passed in).
    for name, net in cases:
        bl, Hl, rec, betas = all_blocks(net)
        H = refs[name]
        for eps in [1e-1, 1e-3]:
            stages, Hl2 = make_stages(net)
            structured_factor(stages, Hl2, eps)
            e_rt = e_c = e_s = e_j = e_y = e_k = e_l = 0.0
            cond_tm = max(np.linalg.cond(st["Tm"]) for st in stages[1:])
            for l, st in enumerate(stages):
                L, b = net.layers[l], bl[l]
                S = st["S"]
                Rt = b["Hxx"] + eps * np.eye(L.p) + b["B"].T @ S @ b["B"]
                Nm = b["Hxz"] + b["B"].T @ S @ b["A"]
                P = L.vec_perm()
                QzK = np.kron(st["qz"], np.eye(L.O))
                Pic = np.eye(L.I1) - st["qz"] @ st["qz"].T
                Rt_struct = P.T @ (QzK @ (st["Tm"] - eps * np.eye(len(st["Tm"]))) @ QzK.T
                                   + eps * np.eye(L.p)) @ P
                e_rt = max(e_rt, rel(Rt_struct, Rt))
                # the orthogonal split: on (Qc kron I) Rt is eps I exactly
                Uc_vec = np.kron(np.linalg.qr(st["qz"], mode="complete")[0][:, st["R"]:], np.eye(L.O))
                if Uc_vec.shape[1]:
                    e_c = max(e_c, np.linalg.norm(P @ Rt @ P.T @ Uc_vec - eps * Uc_vec) / np.linalg.norm(Rt))
                e_l = max(e_l, rel(st["Lf"] @ st["Df"] @ st["Lf"].T, st["Tm"][st["perm"]][:, st["perm"]]))
                if l > 0:
                    # reference for K and S_prev: the dense formulas in long double
                    ld = lambda m: np.asarray(m, dtype=np.longdouble)
                    S_, A_, B_ = ld(S), ld(b["A"]), ld(b["B"])
                    Rt_ = ld(b["Hxx"]) + ld(eps) * np.eye(L.p, dtype=np.longdouble) + B_.T @ S_ @ B_
                    N_ = ld(b["Hxz"]) + B_.T @ S_ @ A_
                    K_ = solve_ld(Rt_, N_)
                    Sprev = (ld(b["Hzz"]) + A_.T @ S_ @ A_ - N_.T @ K_).astype(np.float64)
                    e_s = max(e_s, rel(stages[l - 1]["S"], Sprev))
                    e_j = max(e_j, rel(st["J"], QzK.T @ P @ Nm))
                    Tinv_J = np.column_stack([tm_solve(st, st["J"][:, j]) for j in range(st["J"].shape[1])])
                    Dinv = np.linalg.inv(st["Df"])
                    e_y = max(e_y, rel(st["Y"].T @ Dinv @ st["Y"], st["J"].T @ Tinv_J))
                    # K = (Qz kron I) Tm^-1 J + (Pi_c kron I) Dterm / eps, Dterm from d
                    Dterm = np.zeros((L.p, net.B * L.I))
                    for n in range(net.B):
                        for iz in range(L.I):
                            Dterm[:, n * L.I + iz] = np.kron(np.eye(L.I1)[iz], st["d"][:, n])
                    Ks = P.T @ (QzK @ Tinv_J + np.kron(Pic, np.eye(L.O)) @ Dterm / eps)
                    e_k = max(e_k, rel(Ks, K_.astype(np.float64)))
            print("[4] %s, eps %g, max cond(Tm)*u64 %.0e: Rt %.1e, complement %.1e, LDL' %.1e, J %.1e, "
                  "Y'D^-1Y %.1e, K %.1e, S update %.1e"
                  % (name, eps, cond_tm * 1.1e-16, e_rt, e_c, e_l, e_j, e_y, e_k, e_s))
            for what, v in [("Rt", e_rt), ("complement", e_c), ("LDL", e_l), ("J", e_j), ("Y", e_y),
                            ("K", e_k), ("S", e_s)]:
                if v > max(1e-13, 10 * cond_tm * 1.1e-16):
                    FAILS.append("4 %s %s %g" % (name, what, eps))
            worst = 0.0
            Kd = H + eps * np.eye(net.N)
            for seed in [21, 22]:
                g = np.random.default_rng(seed).normal(size=net.N)
                x = structured_solve(net, stages, g, eps)
                worst = max(worst, rel(x, accurate_dense_solve(Kd, g)))
            cu = np.linalg.cond(Kd) * 1.1e-16
            report("4", "%s, eps %g: structured two-sweep solve vs dense (cond*u64 %.0e), rel"
                   % (name, eps, cu), worst, max(1e-13, 100 * cu))

    # ---- section 5: Gauss-Newton
    for name, net in cases:
        Jd = complex_step_jacobian(net)
        _, _, hl, u = net.betas(net.theta)
        o = u.shape[0]
        Hl = np.zeros((u.size, u.size))
        Cf = np.zeros((u.size, u.size))
        for n, h in enumerate(hl):
            Hl[n * o : n * o + o, n * o : n * o + o] = h
            if net.loss == "mse":
                Cn = np.eye(o) / np.sqrt(net.B)
            else:
                p = softmax_ce_stable(u[:, n], 0)[0]
                Cn = (np.diag(np.sqrt(p)) - np.outer(p, np.sqrt(p))) / np.sqrt(net.B)
            Cf[n * o : n * o + o, n * o : n * o + o] = Cn
        G = Jd.T @ Hl @ Jd
        report("5", "%s: C C' = Hl (MSE: I/sqrt(B); softmax: (diag sqrt p - p sqrt p')/sqrt B), rel" % name,
               rel(Cf @ Cf.T, Hl), 1e-14)
        bl, Hl2, rec, _ = all_blocks(net, gn=True)
        report("5", "%s: G from the blocks with c = d = 0 and S_L = Hl vs J'Hl J, rel" % name,
               rel(hessian_from_blocks(net, bl, Hl2), G), 1e-13)
        U = Jd.T @ Cf
        # the Gram matrix U'U stage by stage (stage/gram.rs): per stage
        # (delta_a . delta_b)(zt_n . zt_m), delta = act' * (adjoint of column a)
        _, recs = net.forward(net.theta)
        M = u.size
        Rcols = Cf.copy()  # column a of C: adjoints of the outputs, sample-major
        gram = np.zeros((M, M))
        radj = [unvecf(Rcols[:, a], o) for a in range(M)]
        for l in reversed(range(len(net.layers))):
            L, r = net.layers[l], recs[l]
            zt = np.vstack([r["z"], np.ones((1, net.B))]) if L.bias else r["z"]
            deltas = [ra * r["s1"] for ra in radj]
            for a in range(M):
                for bb in range(M):
                    gram[a, bb] += np.sum((deltas[a].T @ deltas[bb]) * (zt.T @ zt))
            radj = [r["W"].T @ dl + (ra if L.res else 0) for dl, ra in zip(deltas, radj)]
        report("5", "%s: U'U accumulated stage by stage (gram.rs) vs (J'C)'(J'C), rel" % name,
               rel(gram, U.T @ U), 1e-13)
        worst_r = worst_w = 0.0
        for eps in [1e-1, 1e-3]:
            g = np.random.default_rng(31).normal(size=net.N)
            xd = np.linalg.solve(G + eps * np.eye(net.N), g)
            fac = riccati_factor(bl, Hl2, eps)
            worst_r = max(worst_r, rel(riccati_solve(net, bl, fac, g), xd))
            stages, Hl3 = make_stages(net, gn=True)
            ine, _, _ = structured_factor(stages, Hl3, eps)
            worst_r = max(worst_r, rel(structured_solve(net, stages, g, eps), xd))
            if ine[0] or ine[1]:
                FAILS.append("5 GN inertia %s" % name)
            xw = (g - U @ np.linalg.solve(eps * np.eye(M) + U.T @ U, U.T @ g)) / eps
            worst_w = max(worst_w, rel(xw, xd))
        report("5", "%s: Riccati GN solve (dense and structured sweep; inertia all positive) vs dense, eps 1e-1 "
               "and 1e-3, rel" % name, worst_r, 1e-10)
        report("5", "%s: Woodbury GN solve (M = %d columns) vs dense, eps 1e-1 and 1e-3, rel" % (name, M),
               worst_w, 1e-9)
    # Woodbury divides by eps: plain (unrefined) accuracy against eps, float64 and float32
    name, net = cases[1]
    Jd = complex_step_jacobian(net)
    U = Jd.T / np.sqrt(net.B)
    G = U @ U.T
    _, grad = net.gradient(net.theta)
    for bname, g in [("b random", np.random.default_rng(41).normal(size=net.N)), ("b = the gradient", grad)]:
        line = []
        for eps in [1e-2, 1e-4, 1e-6, 1e-8]:
            xd = accurate_dense_solve(G + eps * np.eye(net.N), g)
            errs = []
            for dt in [np.float64, np.float32]:
                Ud, gd, e = U.astype(dt), g.astype(dt), dt(eps)
                xw = (gd - Ud @ np.linalg.solve(e * np.eye(U.shape[1], dtype=dt) + Ud.T @ Ud, Ud.T @ gd)) / e
                errs.append(rel(xw.astype(np.float64), xd))
            cond = np.linalg.cond(G + eps * np.eye(net.N))
            line.append("eps %g: f64 %.1e, f32 %.1e (cond*u64 %.0e)" % (eps, errs[0], errs[1], cond * 1.1e-16))
        print("[5] %s, Woodbury unrefined, %s:" % (name, bname))
        for ln in line:
            print("[5]   " + ln)
    # the Riccati GN sweep (structured) on the same systems, for comparison
    line = []
    for eps in [1e-2, 1e-4, 1e-6, 1e-8]:
        xd = accurate_dense_solve(G + eps * np.eye(net.N), grad)
        errs = []
        for dt in [np.float64, np.float32]:
            stages, Hl3 = make_stages(net, gn=True, dtype=dt)
            structured_factor(stages, Hl3, eps)
            errs.append(rel(structured_solve(net, stages, grad, eps).astype(np.float64), xd))
        line.append("eps %g: f64 %.1e, f32 %.1e" % (eps, errs[0], errs[1]))
    print("[5] %s, Riccati GN sweep (structured) unrefined, b = the gradient:" % name)
    for ln in line:
        print("[5]   " + ln)
    # PSD part of a custom (indefinite) loss Hessian block
    r_ = np.random.default_rng(9)
    X = r_.normal(size=(4, 4))
    h = X + X.T
    lam, V = np.linalg.eigh(h)
    C = V * np.sqrt(np.maximum(lam, 0))
    hp = V @ np.diag(np.maximum(lam, 0)) @ V.T
    report("5", "psd_factor: C = V diag(sqrt max(lambda, 0)) gives C C' = PSD part (h has %d negative eigenvalues), rel"
           % (lam < 0).sum(), rel(C @ C.T, hp), 1e-14)

    # ---- section 6: losses
    u = np.array([[0.3, -1.2], [1.1, 0.4], [-0.7, 2.0]])
    t = np.array([2, 0])
    net = Net([Layer(1, 3, act="id")], "ce", B=2, seed=0)
    net.T = t
    val, g, hl = net.loss_grad(u)
    h = 1e-30
    gcs = np.zeros_like(u)
    Hcs = np.zeros((6, 6))
    for j in range(6):
        du = unvecf(np.eye(6)[j], 3) * 1j * h
        gcs += unvecf(np.eye(6)[j], 3) * net.loss_grad(u + du)[0].imag / h
        Hcs[:, j] = vecf(net.loss_grad(u + du)[1]).imag / h
    Hb = np.zeros((6, 6))
    Hb[:3, :3], Hb[3:, 3:] = hl
    report("6", "softmax CE (log1p form): gradient (p - e_t)/B and Hessian blocks (diag p - p p')/B vs complex step, rel",
           max(rel(g, gcs), rel(Hb, Hcs)), 1e-14)
    net.loss, net.T = "mse", np.array([[0.1, 0.2], [0.3, -0.4], [1.0, 0.0]])
    val, g, hl = net.loss_grad(u)
    gcs = np.zeros_like(u)
    for j in range(6):
        gcs += unvecf(np.eye(6)[j], 3) * net.loss_grad(u + unvecf(np.eye(6)[j], 3) * 1j * h)[0].imag / h
    report("6", "MSE: gradient (u - t)/B vs complex step, rel", rel(g, gcs), 1e-14)
    # an elementwise custom loss, l(y, t) = log cosh(y - t): L = 1/B sum l, grad l'/B, Hl diag l''/B
    tt = np.array([[0.5, -1.0], [2.0, 0.3], [-0.2, 0.9]])
    def lc_loss(uu):
        return np.log(np.cosh(uu - tt)).sum() / 2
    gl = np.tanh(u - tt) / 2
    hl_diag = (1 - np.tanh(u - tt) ** 2) / 2
    gcs = np.zeros_like(u)
    Hcs = np.zeros((6, 6))
    for j in range(6):
        du = unvecf(np.eye(6)[j], 3) * 1j * h
        gcs += unvecf(np.eye(6)[j], 3) * lc_loss(u + du).imag / h
        Hcs[:, j] = vecf(np.tanh(u + du - tt) / 2).imag / h
    report("6", "elementwise loss log cosh(y - t): gradient l'/B and diagonal Hl = l''/B vs complex step, rel",
           max(rel(gl, gcs), rel(np.diag(vecf(hl_diag)), Hcs)), 1e-14)
    # saturated logits: the smallest case of issue 16 and gaps up to 700, against Decimal
    getcontext().prec = 60
    worst_stable = 0.0
    lines = []
    for gap in [20, 30, 40, 60, 200, 700]:
        uu = np.array([gap / 2, -gap / 2])
        e = Decimal(-gap).exp()
        p1 = e / (1 + e)  # sigmoid(-gap), p0 = 1 - p1
        h_ref = (1 - p1) * p1
        l_ref = sum((-1) ** (k + 1) * e ** k / k for k in range(1, 8))  # log1p(e), e < 3e-9
        m = uu.max()
        ex = np.exp(uu - m)
        p = ex / ex.sum()
        h_naive = p[0] - p[0] * p[0]
        l_naive = (m + np.log(ex.sum())) - uu[0]
        h_st = softmax_hess_stable(uu)[0, 0]
        l_st = softmax_ce_stable(uu, 0)[1]
        hv_st = softmax_hess_apply_stable(uu, np.array([1.0, 0.0]))[0]
        # the gradient at the label, -(sum_{j != t} p_j), and the factor's C_00 = sqrt(p_0) p_1
        gt_st = -softmax_ce_rest(uu, 0)
        c00_st = np.sqrt(p[0]) * softmax_ce_rest(uu, 0)
        er = lambda a, ref: float(abs(Decimal(float(a)) - ref) / abs(ref))
        es = max(er(h_st, h_ref), er(l_st, l_ref), er(hv_st, h_ref), er(gt_st, -p1),
                 er(c00_st, (1 - p1).sqrt() * p1))
        worst_stable = max(worst_stable, es)
        lines.append("[6]   gap %-3d: naive (Hl)_00 %.1e, naive loss %.1e; cancellation-free (Hl)_00, (Hl e_0)_0, grad_t, C_00, loss %.1e"
                     % (gap, er(h_naive, h_ref), er(l_naive, l_ref), es))
    print("[6] two classes, logits (gap/2, -gap/2), label 0, relative error against 60-digit decimal:")
    print("\n".join(lines))
    # the label not the largest logit: the loss is about the gap, evaluated as m + log sum - u_t
    uu = np.array([350.0, -350.0])
    l1 = softmax_ce_stable(uu, 1)[1]
    e = Decimal(-700).exp()
    l1_ref = Decimal(700) + sum((-1) ** (k + 1) * e ** k / k for k in range(1, 8))
    e1 = float(abs(Decimal(float(l1)) - l1_ref) / l1_ref)
    report("6", "same, gap 700, label 1 (loss 700 + log1p(e^-700)), rel", e1, 1e-15)
    if worst_stable > 1e-15:
        FAILS.append("6 stable softmax %g" % worst_stable)
    # three classes, the (Hl v) form
    uu = np.array([350.0, -350.0, 349.0])
    v = np.array([1.0, -2.0, 0.5])
    ref = [Decimal(float(x)) for x in uu]
    mx = max(ref)
    ex = [(x - mx).exp() for x in ref]
    sm = sum(ex)
    pd = [x / sm for x in ex]
    pv = sum(pi * Decimal(float(vi)) for pi, vi in zip(pd, v))
    hv_ref = [pd[i] * (Decimal(float(v[i])) - pv) for i in range(3)]
    hv = softmax_hess_apply_stable(uu, v)
    e3 = max(float(abs(Decimal(float(hv[i])) - hv_ref[i]) / abs(hv_ref[i])) for i in range(3))
    report("6", "three classes, logits (350, -350, 349): (Hl v)_i = p_i sum_{j!=i} p_j (v_i - v_j) vs decimal, "
           "worst rel over i", e3, 1e-14)

    # ---- section 7: accuracy of elimination orders (numpy reference implementations)
    acc1 = Net([Layer(4, 6)] + [Layer(6, 6, res=True) for _ in range(6)] + [Layer(6, 4, act="id")],
               "mse", B=1, seed=51, gain=1.3, target_scale=3.0)
    acc3 = Net([Layer(4, 5)] + [Layer(5, 5, res=True) for _ in range(5)] + [Layer(5, 3, act="id")],
               "mse", B=3, seed=52, gain=1.3, target_scale=3.0)
    for name, net in [("width 6, 8 stages, batch 1", acc1), ("width 5, 7 stages, batch 3", acc3)]:
        H = complex_step_hessian(net)
        bl, Hl, rec, _ = all_blocks(net)
        report("7", "%s (N = %d): block Hessian vs complex step, rel" % (name, net.N),
               rel(hessian_from_blocks(net, bl, Hl), H), 1e-13)
        tabA, tabB = [], []
        for eps in [1e-1, 1e-2, 1e-3, 1e-4, 1e-6]:
            Kd = H + eps * np.eye(net.N)
            g = np.random.default_rng(61).normal(size=net.N)
            xd = accurate_dense_solve(Kd, g)
            cond = np.linalg.cond(Kd)
            resid = lambda x: float(np.linalg.norm((g.astype(np.longdouble) - Kd.astype(np.longdouble)
                                                    @ np.asarray(x, dtype=np.longdouble)).astype(np.float64))
                                    / np.linalg.norm(g))
            rowA, rowB, extra = [], [], None
            for dt in [np.float64, np.float32]:
                blc = [{k: v.astype(dt) for k, v in b.items()} for b in bl]
                fac = riccati_factor(blc, Hl.astype(dt), dt(eps))
                eg = rel(riccati_solve(net, blc, fac, g.astype(dt)).astype(np.float64), xd)
                stages, Hl2 = make_stages(net, dtype=dt)
                structured_factor(stages, Hl2, eps)
                xs = structured_solve(net, stages, g, eps)
                xr = refine_like_crate(net, blc, Hl.astype(dt), stages, g.astype(dt), dt(eps), xs, 2)
                xp, mSp, _, _, _ = carried_sweep(net, bl, Hl, eps, g, rec, dt)
                xdl, mSd, most, _, _ = carried_sweep(net, bl, Hl, eps, g, rec, dt, tau=0.1)
                rowA += [eg, rel(xs.astype(np.float64), xd), rel(xp.astype(np.float64), xd),
                         rel(xdl.astype(np.float64), xd)]
                rowB += [rel(xs.astype(np.float64), xd), resid(xs), rel(xr.astype(np.float64), xd), resid(xr)]
                if dt is np.float64:
                    ctm = max(np.linalg.cond(st["Tm"].astype(np.float64)) for st in stages)
                    extra = (structured_max_S(stages), mSp, mSd, most, ctm * 1.1e-16)
                else:
                    # the residual floor: the exact solution rounded to f32, its residual computed in f32
                    x32 = xd.astype(dt)
                    r32 = g.astype(dt) - apply_blocks(net, blc, Hl.astype(dt), dt(eps), x32)
                    rowB.append(float(np.linalg.norm(r32.astype(np.float64)) / np.linalg.norm(g)))
            tabA.append("[7]   %-7g %-9.0e " % (eps, cond * 6e-8) + " ".join("%-9.1e" % v for v in rowA[:4])
                        + "| " + " ".join("%-9.1e" % v for v in rowA[4:])
                        + "| %.1e / %.1e / %.1e, %d | %.0e" % extra)
            tabB.append(("[7]   %-7g " % eps + " ".join("%-9.1e" % v for v in rowB[:4]) + "| "
                         + " ".join("%-9.1e" % v for v in rowB[4:])).rstrip())
            # the paired and delayed orders are exact reorderings: in float64 they agree with
            # the dense solve to the dense solve's own accuracy
            for v in [rowA[2], rowA[3]]:
                if not v <= max(1e-9, 100 * cond * 1.1e-16):
                    FAILS.append("7 %s eps %g: %g" % (name, eps, v))
        print("[7] %s: relative error of x" % name)
        print("[7]   eps     cond*u32  generic64 crate64   paired64  delayed64 | generic32 crate32   paired32  "
              "delayed32 | max|S| crate/paired/delayed, most carried | max cond(Tm)*u64")
        print("\n".join(tabA))
        print("[7] %s: crate order, plain and refined: error, |r|/|b|" % name)
        print("[7]   eps     err64     res64     ref.err64 ref.res64 | err32     res32     ref.err32 ref.res32 "
              "res32 of f32(x*)")
        print("\n".join(tabB))

    # ---- section 8: log-determinant, inertia, selected inversion, Laplace
    for name, net in cases:
        H = refs[name]
        bl, Hl, rec, _ = all_blocks(net)
        for eps in [1.0, 1e-2, -0.05]:
            Kd = H + eps * np.eye(net.N)
            cu = np.linalg.cond(Kd) * 1.1e-16
            sd, ld = np.linalg.slogdet(Kd)
            ev = np.linalg.eigvalsh(Kd)
            ref_in = np.array([(ev < 0).sum(), 0, (ev > 0).sum()])
            stages, Hl2 = make_stages(net)
            ine, ss, ls = structured_factor(stages, Hl2, eps)
            fac = riccati_factor(bl, Hl, eps)
            lg = sum(np.linalg.slogdet(f["Rt"])[1] for f in fac)
            e_lds = [abs(ls - ld), abs(lg - ld)]
            ok_in = bool((ine == ref_in).all()) and ss == sd
            for tau in [None, 0.1]:
                _, _, _, lc, ic = carried_sweep(net, bl, Hl, eps, np.ones(net.N), rec, np.float64, tau=tau)
                e_lds.append(abs(lc - ld))
                ok_in &= bool((ic == ref_in).all())
            e_ld = max(e_lds)
            Kinv = np.linalg.inv(Kd)
            sig_g = generic_selinv(net, bl, fac)
            sig_s, diag_s = structured_selinv(net, stages, eps)
            e_g = e_s = e_d = 0.0
            for l in range(len(bl)):
                sl = slice(net.offs[l], net.offs[l + 1])
                e_g = max(e_g, rel(sig_g[l], Kinv[sl, sl]))
                e_s = max(e_s, rel(sig_s[l], Kinv[sl, sl]))
                e_d = max(e_d, rel(diag_s[l], np.diag(Kinv)[sl]))
            print("[8] %s, eps %g (cond*u64 %.0e, %d negative): log|det| abs err: structured %.1e, dense-Rt %.1e, "
                  "paired %.1e, delayed %.1e; inertia %s; Sigma_l: dense-Rt %.1e, structured %.1e, diag %.1e"
                  % (name, eps, cu, ref_in[0], *e_lds, "exact" if ok_in else "WRONG", e_g, e_s, e_d))
            if not ok_in:
                FAILS.append("8 inertia %s %g" % (name, eps))
            if e_ld > 10 * net.N * cu:
                FAILS.append("8 logdet %s %g" % (name, eps))
            if max(e_s, e_d) > 100 * cu:
                FAILS.append("8 selinv %s %g" % (name, eps))
    # the same recursion over the Gauss-Newton factors: the Laplace posterior marginals
    name, net = cases[1]
    Jd = complex_step_jacobian(net)
    G = Jd.T @ Jd / net.B
    for eps in [1e-1, 1e-3]:
        stages, Hl3 = make_stages(net, gn=True)
        structured_factor(stages, Hl3, eps)
        sig_s, diag_s = structured_selinv(net, stages, eps)
        Ginv = np.linalg.inv(G + eps * np.eye(net.N))
        e = max(rel(diag_s[l], np.diag(Ginv)[net.offs[l] : net.offs[l + 1]]) for l in range(len(stages)))
        report("8", "%s: Gauss-Newton diag((G + eps I)^-1) by the structured recursion vs dense, eps %g, rel"
               % (name, eps), e, 1e-10)
    # Woodbury diagonal and predictive variance on the Gauss-Newton matrix
    name, net = cases[1]
    Jd = complex_step_jacobian(net)
    U = Jd.T / np.sqrt(net.B)
    G = U @ U.T
    M = U.shape[1]
    for eps in [1e-1, 1e-3]:
        Ginv = np.linalg.inv(G + eps * np.eye(net.N))
        Lc = np.linalg.cholesky(eps * np.eye(M) + U.T @ U)
        Wm = np.linalg.solve(Lc, U.T)
        dw = (1 - (Wm * Wm).sum(axis=0)) / eps
        report("8", "%s: Woodbury diagonal (1 - diag(U (eps I + U'U)^-1 U'))/eps vs dense, eps %g, rel"
               % (name, eps), rel(dw, np.diag(Ginv)), 1e-10)
    # trace of the inverse as the derivative of the log-determinant in eps
    eps, de = 1e-2, 1e-6
    ld = lambda e: np.linalg.slogdet(G + e * np.eye(net.N))[1]
    fd = (ld(eps + de) - ld(eps - de)) / (2 * de)
    report("8", "d/d(eps) log det(G + eps I) (central difference) vs trace((G + eps I)^-1), rel",
           abs(fd - np.trace(np.linalg.inv(G + eps * np.eye(net.N)))) / abs(fd), 1e-7)
    # predictive covariance J* (G + eps I)^-1 J*' from one structured GN solve per output
    Xq = np.random.default_rng(71).normal(size=(net.layers[0].I, 1))
    qnet = Net(net.layers, "mse", B=1, seed=2)
    qnet.theta = net.theta
    Jq = complex_step_jacobian(qnet, Xq)  # outputs x N at the query
    stages, Hl3 = make_stages(net, gn=True)
    eps = 1e-2
    structured_factor(stages, Hl3, eps)
    cols = np.column_stack([structured_solve(net, stages, Jq[o], eps) for o in range(Jq.shape[0])])
    pv = Jq @ cols
    pv_ref = Jq @ np.linalg.solve(G + eps * np.eye(net.N), Jq.T)
    report("8", "%s: predictive covariance J* (G + eps I)^-1 J*' (one structured GN solve per output) vs dense, rel"
           % name, rel(pv, pv_ref), 1e-10)
    # Laplace evidence of a linear model (Dense<I, O, Identity> + MSE) against the exact marginal
    lin = Net([Layer(3, 2, act="id")], "mse", B=5, seed=81)
    lin.theta = np.zeros(lin.N)
    alpha, beta_n = 0.7, 4.0
    Bn = lin.B
    kappa = beta_n * Bn  # Phi = -log p(D | theta) + const = kappa * l
    epsl = alpha / kappa
    Jl = complex_step_jacobian(lin)
    Gl = Jl.T @ Jl / Bn
    _, g0 = lin.gradient(lin.theta)
    th_star = -np.linalg.solve(Gl + epsl * np.eye(lin.N), g0)  # one Newton step: l is quadratic
    lin.theta = th_star
    lval, _ = lin.gradient(th_star)
    nobs = lin.T.size
    loglik = -kappa * lval + nobs / 2 * np.log(beta_n / (2 * np.pi))
    _, ldG = np.linalg.slogdet(Gl + epsl * np.eye(lin.N))
    logdetA = lin.N * np.log(kappa) + ldG
    ev_laplace = loglik - alpha / 2 * th_star @ th_star + lin.N / 2 * np.log(alpha) - logdetA / 2
    lin.theta = np.zeros(lin.N)
    Phi = Jl  # u = Phi theta (theta = 0 gives u = 0 for this bias-including linear map)
    Cov = Phi @ Phi.T / alpha + np.eye(nobs) / beta_n
    tv = vecf(lin.T)
    sC, ldC = np.linalg.slogdet(Cov)
    ev_exact = -0.5 * (tv @ np.linalg.solve(Cov, tv) + ldC + nobs * np.log(2 * np.pi))
    report("8", "Laplace evidence of a linear model (kappa = beta B, eps = alpha / kappa) vs the exact Gaussian "
           "marginal likelihood (%.6f), abs" % ev_exact, abs(ev_laplace - ev_exact), 1e-12)
    wrong = loglik - alpha / 2 * th_star @ th_star + lin.N / 2 * np.log(alpha) - (lin.N * np.log(beta_n) + ldG) / 2
    print("[8] (the same with kappa = beta, i.e. the 1/B of the mean loss forgotten: off by %.1f)"
          % abs(wrong - ev_exact))

    print()
    if FAILS:
        print("FAILED: " + "; ".join(FAILS))
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()

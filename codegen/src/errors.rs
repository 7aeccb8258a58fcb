//! Collecting several errors into one `syn::Error` (serde_derive's `Ctxt`, in small).

/// Accumulates errors; [`Errors::finish`] returns them all combined, or `Ok`.
#[derive(Default)]
pub struct Errors {
    first: Option<syn::Error>,
}

impl Errors {
    /// Records one error.
    pub fn push(&mut self, err: syn::Error) {
        match &mut self.first {
            Some(first) => first.combine(err),
            None => self.first = Some(err),
        }
    }

    /// Records an error spanning `tokens`.
    pub fn spanned<T: quote::ToTokens, M: core::fmt::Display>(&mut self, tokens: T, msg: M) {
        self.push(syn::Error::new_spanned(tokens, msg));
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// `Ok(())`, or every recorded error at once.
    pub fn finish(self) -> syn::Result<()> {
        match self.first {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

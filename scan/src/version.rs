//! Version order per ecosystem: the rules each package manager itself uses to decide whether an
//! installed version is before an advisory's fixed version.

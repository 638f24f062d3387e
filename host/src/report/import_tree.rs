//! The import tree of an [`ImportProfile`] as a walkable structure: each
//! module's children and the top-level modules, in import order.
//!
//! An [`ImportProfile`] stores parents as indices. The probe guarantees that a
//! parent precedes its children, but the report reads profiles from JSON files
//! too, so a parent index that does not point to an earlier module (a later one,
//! itself, or past the end) is read as "top level". That keeps every walk over
//! the tree finite and panic-free whatever the input. Walks are iterative, so a
//! pathologically deep chain of imports cannot overflow the stack.

use crate::model::{ImportProfile, ImportedModule};

/// The children lists of an import profile, built once and shared by the views.
#[derive(Debug)]
pub(crate) struct ImportTree<'a> {
    modules: &'a [ImportedModule],
    parents: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
    roots: Vec<usize>,
}

impl<'a> ImportTree<'a> {
    /// Builds the tree; children keep the order in which their imports began.
    pub(crate) fn new(profile: &'a ImportProfile) -> Self {
        let modules = profile.modules.as_slice();
        let parents: Vec<Option<usize>> = modules
            .iter()
            .enumerate()
            .map(|(i, m)| m.parent.filter(|&p| p < i))
            .collect();
        let mut children = vec![Vec::new(); modules.len()];
        let mut roots = Vec::new();
        for (i, parent) in parents.iter().enumerate() {
            match parent {
                Some(p) => children[*p].push(i),
                None => roots.push(i),
            }
        }
        Self {
            modules,
            parents,
            children,
            roots,
        }
    }

    /// The modules, indexed as in the profile.
    pub(crate) fn modules(&self) -> &'a [ImportedModule] {
        self.modules
    }

    /// The module's parent after sanitizing (`None` at top level).
    pub(crate) fn parent(&self, index: usize) -> Option<usize> {
        self.parents.get(index).copied().flatten()
    }

    /// The modules `index` imported, in import order.
    pub(crate) fn children(&self, index: usize) -> &[usize] {
        self.children.get(index).map_or(&[], Vec::as_slice)
    }

    /// The top-level modules, in import order.
    pub(crate) fn roots(&self) -> &[usize] {
        &self.roots
    }

    /// How many modules are in the subtree under `index`, itself included.
    pub(crate) fn subtree_len(&self, index: usize) -> usize {
        let mut count = 0;
        let mut stack = vec![index];
        while let Some(i) = stack.pop() {
            count += 1;
            stack.extend_from_slice(self.children(i));
        }
        count
    }

    /// The names from the top-level module down to `index`, outermost first.
    pub(crate) fn stack(&self, index: usize) -> Vec<&'a str> {
        let mut names = Vec::new();
        let mut at = Some(index);
        while let Some(i) = at {
            names.push(self.modules[i].module.as_str());
            at = self.parent(i);
        }
        names.reverse();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(name: &str, parent: Option<usize>) -> ImportedModule {
        ImportedModule {
            module: name.into(),
            parent,
            ..ImportedModule::default()
        }
    }

    #[test]
    fn bad_parents_become_top_level() {
        let profile = ImportProfile {
            modules: vec![
                module("a", None),
                module("b", Some(0)),
                module("c", Some(3)),
                module("d", Some(99)),
                module("e", Some(4)),
            ],
        };
        let tree = ImportTree::new(&profile);
        assert_eq!(tree.roots(), &[0, 2, 3, 4]);
        assert_eq!(tree.children(0), &[1]);
        assert_eq!(tree.stack(1), vec!["a", "b"]);
        assert_eq!(tree.subtree_len(0), 2);
        assert_eq!(tree.children(42), &[] as &[usize]);
    }
}

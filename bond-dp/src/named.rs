//! `named_enum!`: an enum whose values have the kernel's names and numbers (`mode=802.3ad`
//! or `mode=4`), with the table, both lookups and `Display` written once for every such
//! enum (the bonding modes, hash policies and the enumerated options).

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal, $num:literal;)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            #[default]
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in the kernel's order.
            pub const ALL: [$name; [$(stringify!($variant)),+].len()] = [$($name::$variant),+];
            /// (name, number) of every value.
            pub const VALUES: &'static [(&'static str, u64)] = &[$(($text, $num)),+];

            /// The kernel's name of the value.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            /// The kernel's number of the value.
            pub fn number(self) -> u64 {
                match self { $($name::$variant => $num,)+ }
            }

            pub fn from_number(n: u64) -> Option<Self> {
                match n { $($num => Some($name::$variant),)+ _ => None }
            }

            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

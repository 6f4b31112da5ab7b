//! Built-in collectors: measurements compiled into the agent that need no package.

//! Installing, listing and removing plugin packages in the agent's plugin folder.

//! wormnet-envs: the environments wormnet ships, kept apart from the trainer so that a user's
//! own environment crate needs only `wormnet-sim`.

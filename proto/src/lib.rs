//! Generated gRPC code for the three contracts, plus the descriptor set for server reflection.

pub mod billing {
    pub mod v1 {
        tonic::include_proto!("billing.v1");
    }
}
pub mod access {
    pub mod v1 {
        tonic::include_proto!("access.v1");
    }
}
pub mod notification {
    pub mod v1 {
        tonic::include_proto!("notification.v1");
    }
}

/// Encoded `FileDescriptorSet` of all three packages, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("descriptor");

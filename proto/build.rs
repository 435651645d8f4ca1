fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("descriptor.bin"))
        .compile_protos(
            &[
                "billing/v1/billing.proto",
                "access/v1/access.proto",
                "notification/v1/notification.proto",
            ],
            &["."],
        )?;
    Ok(())
}

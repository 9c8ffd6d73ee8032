/* libarchive, loaded on first use. cairn links it lazily because it brings a
 * score of libraries (ICU among them) whose loading would cost every command,
 * `cairn run` included, a few milliseconds; only a tar import needs it. Code
 * that includes this header calls the libarchive functions by their names. */
#pragma once

#include "../base/error.h"

#include <archive.h>
#include <archive_entry.h>

#define ARCHIVE_API_FUNCS(X) \
	X(archive_entry_filetype) \
	X(archive_entry_gid) \
	X(archive_entry_hardlink) \
	X(archive_entry_pathname) \
	X(archive_entry_perm) \
	X(archive_entry_size) \
	X(archive_entry_size_is_set) \
	X(archive_entry_symlink) \
	X(archive_entry_uid) \
	X(archive_entry_xattr_next) \
	X(archive_entry_xattr_reset) \
	X(archive_error_string) \
	X(archive_filter_count) \
	X(archive_filter_name) \
	X(archive_read_data_block) \
	X(archive_read_free) \
	X(archive_read_new) \
	X(archive_read_next_header) \
	X(archive_read_open_fd) \
	X(archive_read_open_memory) \
	X(archive_read_support_filter_gzip) \
	X(archive_read_support_filter_bzip2) \
	X(archive_read_support_filter_lzma) \
	X(archive_read_support_filter_xz) \
	X(archive_read_support_filter_zstd) \
	X(archive_read_support_format_tar)

struct archive_api {
#define ARCHIVE_API_MEMBER(f) __typeof__(f) *f;
	ARCHIVE_API_FUNCS(ARCHIVE_API_MEMBER)
#undef ARCHIVE_API_MEMBER
};

extern struct archive_api archive_api;

/* Load libarchive once; -ELIBACC with err set when it cannot be loaded. */
int archive_api_load(struct cairn_error *err);

#ifndef ARCHIVE_API_IMPL
#define archive_entry_filetype (archive_api.archive_entry_filetype)
#define archive_entry_gid (archive_api.archive_entry_gid)
#define archive_entry_hardlink (archive_api.archive_entry_hardlink)
#define archive_entry_pathname (archive_api.archive_entry_pathname)
#define archive_entry_perm (archive_api.archive_entry_perm)
#define archive_entry_size (archive_api.archive_entry_size)
#define archive_entry_size_is_set (archive_api.archive_entry_size_is_set)
#define archive_entry_symlink (archive_api.archive_entry_symlink)
#define archive_entry_uid (archive_api.archive_entry_uid)
#define archive_entry_xattr_next (archive_api.archive_entry_xattr_next)
#define archive_entry_xattr_reset (archive_api.archive_entry_xattr_reset)
#define archive_error_string (archive_api.archive_error_string)
#define archive_filter_count (archive_api.archive_filter_count)
#define archive_filter_name (archive_api.archive_filter_name)
#define archive_read_data_block (archive_api.archive_read_data_block)
#define archive_read_free (archive_api.archive_read_free)
#define archive_read_new (archive_api.archive_read_new)
#define archive_read_next_header (archive_api.archive_read_next_header)
#define archive_read_open_fd (archive_api.archive_read_open_fd)
#define archive_read_open_memory (archive_api.archive_read_open_memory)
#define archive_read_support_filter_gzip (archive_api.archive_read_support_filter_gzip)
#define archive_read_support_filter_bzip2 (archive_api.archive_read_support_filter_bzip2)
#define archive_read_support_filter_lzma (archive_api.archive_read_support_filter_lzma)
#define archive_read_support_filter_xz (archive_api.archive_read_support_filter_xz)
#define archive_read_support_filter_zstd (archive_api.archive_read_support_filter_zstd)
#define archive_read_support_format_tar (archive_api.archive_read_support_format_tar)
#endif

"""Weights from the Hugging Face Hub, with errors a user can act on.

Offline, `huggingface_hub.hf_hub_download` ends in a `LocalEntryNotFoundError`
traceback; here every failure becomes one message naming the repository and
how to pass a local file instead.
"""


class HubDownloadError(RuntimeError):
  """A weights file could not be fetched from the Hub."""


def download_safetensors(hub_id: str, local_hint: str) -> str:
  """Path of `model.safetensors` of the Hub repository `hub_id`.

  Args:
    hub_id: e.g. 'timm/mobilenetv4_conv_small.e2400_r224_in1k'.
    local_hint: How to pass a local file instead (a flag or an argument),
      for the error message.

  Raises:
    HubDownloadError: naming `hub_id` and `local_hint`, when the package is
      missing or the file cannot be fetched (offline, unknown repository).
  """
  try:
    import huggingface_hub  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise HubDownloadError(
        f'Fetching {hub_id} needs `pip install huggingface_hub`; or pass '
        f'{local_hint}.') from e
  try:
    return huggingface_hub.hf_hub_download(hub_id, 'model.safetensors')
  except (OSError, ValueError) as e:
    # LocalEntryNotFoundError (offline) and HfHubHTTPError are OSErrors.
    raise HubDownloadError(
        f'Could not fetch model.safetensors of {hub_id} from the Hugging '
        f'Face Hub ({type(e).__name__}); download it elsewhere and pass '
        f'{local_hint}.') from e

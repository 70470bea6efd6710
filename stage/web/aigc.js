// The explicit AI-generated label and the licences' credits (docs/provenance.md): the label
// is in the page from the start; this keeps its language and the credits in step with the
// show's status ("aigc": text, language, credits), every few seconds.
(() => {
  const label = document.getElementById('aigc-label');
  const credits = document.getElementById('aigc-credits');
  async function refresh() {
    try {
      const res = await fetch('/status', { credentials: 'same-origin' });
      if (!res.ok) return;
      const aigc = (await res.json()).aigc;
      if (!aigc) return;
      label.textContent = aigc.text;
      label.lang = aigc.language === 'zh' ? 'zh-CN' : 'en';
      label.dataset.produceId = aigc.produce_id;
      if (credits) credits.textContent = (aigc.credits || []).join(' · ');
    } catch (err) { /* the label stays as it is: it never disappears */ }
  }
  refresh();
  setInterval(refresh, 3000);
})();
